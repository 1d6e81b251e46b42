raise ValueError("this program fails")
