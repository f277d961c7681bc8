/** The handoff-latency chart: one row of points per approach, log-scale time axis, rendered headless to SVG with Vega-Lite. */
import * as vega from 'vega';
import { compile } from 'vega-lite';

export async function renderChart(series: Record<string, number[]>): Promise<string> {
  const values = Object.entries(series).flatMap(([approach, samples]) => samples.map((ms) => ({ approach, ms: Math.max(ms, 0.01) })));
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Graceful handoff latency, 10 candidates (log scale)',
    width: 640,
    height: 220,
    data: { values },
    layer: [
      {
        mark: { type: 'tick', opacity: 0.35, thickness: 1 },
        encoding: {
          x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'handoff latency (ms)' },
          y: { field: 'approach', type: 'nominal', sort: Object.keys(series), title: null, axis: { labelLimit: 300 } },
          color: { field: 'approach', type: 'nominal', legend: null },
        },
      },
      {
        mark: { type: 'point', shape: 'diamond', size: 90, filled: true, color: 'black' },
        encoding: {
          x: { aggregate: 'median', field: 'ms', type: 'quantitative' },
          y: { field: 'approach', type: 'nominal', sort: Object.keys(series) },
        },
      },
    ],
  }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  return view.toSVG();
}
