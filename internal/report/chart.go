package report

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// lineColors tells the implementations apart, the baseline in red.
var lineColors = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// ChartSVG draws the benchmark's median time per operation against its size,
// both axes logarithmic, a line per implementation: a line that climbs one
// decade per decade is linear, a flat one does not grow; the legend gives each
// line's slope over the top decade (see Exponent). where, a short line, says
// under the title where it was measured (see Report.Machine).
func (b *Benchmark) ChartSVG(where string) ([]byte, error) {
	if !b.Grows() {
		return nil, fmt.Errorf("%s: a chart needs two sizes or more", b.Name)
	}
	scale, unitName := timeScale(b)
	return b.chartSVG(where, timeUnit, scale,
		fmt.Sprintf("%s: time per operation against %s", b.Name, b.SizeKey),
		fmt.Sprintf("time per operation, %s (log scale)", unitName))
}

// ChartUnitSVG is ChartSVG for another unit of the benchmark, such as a rate
// (rows/s): its median against the size, both axes logarithmic.
func (b *Benchmark) ChartUnitSVG(where, unit string) ([]byte, error) {
	if !b.Grows() {
		return nil, fmt.Errorf("%s: a chart needs two sizes or more", b.Name)
	}
	if !slices.Contains(b.Units, unit) {
		return nil, fmt.Errorf("%s has no unit %s", b.Name, unit)
	}
	return b.chartSVG(where, unit, 1,
		fmt.Sprintf("%s: %s against %s", b.Name, unit, b.SizeKey),
		fmt.Sprintf("%s (log scale)", unit))
}

// chartSVG draws the median of unit, times scale, against the size.
func (b *Benchmark) chartSVG(where, unit string, scale float64, title, yLabel string) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("%s (log scale)", b.SizeKey)
	p.Y.Label.Text = yLabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	for i, impl := range b.Impls {
		var points plotter.XYs
		for _, size := range b.Sizes {
			if v, ok := b.Median(impl, size, unit); ok && size > 0 && v > 0 {
				points = append(points, plotter.XY{X: size, Y: v * scale})
			}
		}
		if len(points) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(points)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", b.Name, impl, err)
		}
		c := lineColors[i%len(lineColors)]
		line.Color, line.Width = c, vg.Points(2)
		dots.Color, dots.Shape = c, draw.CircleGlyph{}
		p.Add(line, dots)
		label := impl
		if k, ok := b.Exponent(impl, unit); ok {
			label = fmt.Sprintf("%s (top decade n^%s)", impl, FormatExponent(k, 1))
		}
		p.Legend.Add(label, line, dots)
	}
	// A second line under the title says where the numbers come from.
	p.Title.Text += "\n" + where

	// Room around the first and last sizes, so their tick labels fit whatever
	// font the viewer draws them in.
	p.X.Min, p.X.Max = b.Sizes[0]/1.6, b.Sizes[len(b.Sizes)-1]*1.6

	canvas := vgsvg.NewWith(vgsvg.UseWH(8*vg.Inch, 5*vg.Inch), vgsvg.EmbedFonts(false))
	p.Draw(draw.New(canvas))
	var out bytes.Buffer
	if _, err := canvas.WriteTo(&out); err != nil {
		return nil, fmt.Errorf("%s: write the chart: %w", b.Name, err)
	}
	return out.Bytes(), nil
}

// timeScale picks the unit of the y axis from the largest time.
func timeScale(b *Benchmark) (float64, string) {
	largest := 0.0
	for _, impl := range b.Impls {
		for _, size := range b.Sizes {
			if v, ok := b.Median(impl, size, timeUnit); ok {
				largest = max(largest, v)
			}
		}
	}
	switch {
	case largest >= 1:
		return 1, "s"
	case largest >= 1e-3:
		return 1e3, "ms"
	}
	return 1e6, "µs"
}
