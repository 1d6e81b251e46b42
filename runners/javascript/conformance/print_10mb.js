process.stdout.write("x".repeat(10_000_000))
