const { Worker } = require("node:worker_threads");
const { execFileSync } = require("node:child_process");
const worker = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
worker.on("message", (value) => {
  const child = execFileSync(process.execPath, ["-e", "process.stdout.write('42')"]).toString();
  if (child !== String(value)) throw new Error(`child said ${child}`);
  console.log(value);
  worker.terminate();
});
