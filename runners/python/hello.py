import sys

sys.stdout.write("OK\n")
