data = b"x" * (512 * 1024 * 1024)
print(len(data))
