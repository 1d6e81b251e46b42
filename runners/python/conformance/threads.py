import subprocess
import sys
import threading

results = []
worker = threading.Thread(target=lambda: results.append(6 * 7))
worker.start()
worker.join()
child = subprocess.run([sys.executable, "-c", "print(42)"], capture_output=True, text=True, check=True)
assert child.stdout.strip() == str(results[0])
print(results[0])
