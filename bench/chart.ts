/** The handoff-latency chart: one row of points per approach, log-scale time axis, rendered headless to SVG with Vega-Lite. */
import * as vega from 'vega';
import { compile } from 'vega-lite';

export async function renderChart(series: Record<string, number[]>): Promise<string> {
  const values = Object.entries(series).flatMap(([approach, samples]) => samples.map((ms) => ({ approach, ms: Math.max(ms, 0.01) })));
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Graceful handoff latency, 10 candidates (log scale)',
      subtitle: 'one tick per handoff; ◆ and the number: the median (ms)',
    },
    width: 640,
    height: 220,
    data: { values },
    layer: [
      {
        // Visible even for a series of one sample (poll-only runs are few and seconds long).
        mark: { type: 'tick', opacity: 0.6, thickness: 2 },
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
      {
        mark: { type: 'text', dy: -12, fontSize: 11 },
        encoding: {
          x: { aggregate: 'median', field: 'ms', type: 'quantitative' },
          y: { field: 'approach', type: 'nominal', sort: Object.keys(series) },
          text: { aggregate: 'median', field: 'ms', type: 'quantitative', format: '.1f' },
        },
      },
    ],
  }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  return view.toSVG();
}
