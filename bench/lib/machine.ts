import { cpus, totalmem, platform, release, loadavg } from "node:os";
import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../scripts/lib/stack.js";

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, "node_modules", name, "package.json"), "utf8"));
    return String(pkg.version);
  } catch {
    return "not installed";
  }
}

/** What results.json records about where and with what the figures were measured. */
export function machineInfo() {
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model ?? "unknown",
    cores: cpuList.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    loadAverageAtStart: loadavg().map((v) => Number(v.toFixed(2))),
    versions: {
      node: process.versions.node,
      "onnxruntime-node": packageVersion("onnxruntime-node"),
      "onnxruntime-web": packageVersion("onnxruntime-web"),
      wrangler: packageVersion("wrangler"),
      hono: packageVersion("hono"),
    },
  };
}
