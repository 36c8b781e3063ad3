import { describe, expect, it } from "vitest";
import { Exposition, Histogram } from "./prometheus.js";

describe("Prometheus exposition", () => {
  it("renders counters, gauges with escaped labels, and cumulative histograms", () => {
    const h = new Histogram("req_seconds", "Latency.", [0.1, 1]);
    h.observe(0.05, { m: "a" });
    h.observe(0.5, { m: "a" });
    h.observe(5, { m: "a" });
    const text = new Exposition()
      .metric("things_total", "counter", "Things.", [{ labels: { mix: 'a"b\\c' }, value: 3 }])
      .metric("depth", "gauge", "Depth.", 2)
      .histogram(h)
      .text();
    expect(text).toContain('# TYPE things_total counter\nthings_total{mix="a\\"b\\\\c"} 3\n');
    expect(text).toContain("depth 2\n");
    expect(text).toContain('req_seconds_bucket{m="a",le="0.1"} 1\n');
    expect(text).toContain('req_seconds_bucket{m="a",le="1"} 2\n');
    expect(text).toContain('req_seconds_bucket{m="a",le="+Inf"} 3\n');
    expect(text).toContain('req_seconds_sum{m="a"} 5.55\n');
    expect(text).toContain('req_seconds_count{m="a"} 3\n');
  });
});
