package synth

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// garment is one drawn sample: its attribute choices and the geometry the
// annotations are read from.
type garment struct {
	category int // index into categories
	texture  int // index into textures
	fabric   int
	fit      int
	sleeve   int // -1 when the garment has no sleeves to speak of
	length   int // -1 for tops and outerwear
	neckline int // -1 for trousers and skirts
	style    int

	bbox      [4]int32
	landmarks [8][3]int32 // visibility (0 visible, 2 absent), x, y
}

// Attribute groups, in label order. The fine layout's group id of each is
// its position + 1 (texture 1 ... style 7); coarseType is DeepFashion's type.
var groups = []struct {
	name       string
	coarseType int
	values     []string
}{
	{"texture", 1, []string{"solid", "striped", "dotted", "checked", "floral", "graphic"}},
	{"sleeve", 4, []string{"sleeveless", "short sleeve", "long sleeve"}},
	{"length", 4, []string{"mini length", "midi length", "maxi length"}},
	{"neckline", 4, []string{"crew neckline", "v neckline", "square neckline"}},
	{"fabric", 2, []string{"denim", "leather", "knit", "chiffon"}},
	{"fit", 3, []string{"tight", "regular fit", "loose"}},
	{"style", 5, []string{"casual", "formal", "sporty"}},
}

// categories are DeepFashion-like categories and body types.
var categories = []struct {
	name string
	body int // 1 upper, 2 lower, 3 full
}{
	{"Tee", 1}, {"Jacket", 1}, {"Dress", 3}, {"Skirt", 2}, {"Pants", 2},
}

const (
	catTop = iota
	catOuterwear
	catDress
	catSkirt
	catTrousers
)

// values returns the attribute choices of g in group order.
func (g *garment) values() [7]int {
	return [7]int{g.texture, g.sleeve, g.length, g.neckline, g.fabric, g.fit, g.style}
}

func newGarment(rng *rand.Rand) *garment {
	g := &garment{
		category: rng.IntN(len(categories)),
		texture:  rng.IntN(6), fabric: rng.IntN(4), fit: rng.IntN(3), style: rng.IntN(3),
		sleeve: -1, length: -1, neckline: -1,
	}
	switch g.category {
	case catTop, catOuterwear:
		g.sleeve, g.neckline = rng.IntN(3), rng.IntN(3)
	case catDress:
		g.sleeve, g.neckline, g.length = rng.IntN(3), rng.IntN(3), rng.IntN(3)
	default:
		g.length = rng.IntN(3)
	}
	return g
}

// canvas is an RGB drawing surface with a garment mask.
type canvas struct {
	img  *image.NRGBA
	mask []bool
	size int
}

func newCanvas(size int, rng *rand.Rand) *canvas {
	c := &canvas{img: image.NewNRGBA(image.Rect(0, 0, size, size)), mask: make([]bool, size*size), size: size}
	// A light studio background with a soft vertical gradient.
	top := 228 + rng.IntN(20)
	for y := range size {
		v := uint8(top - 14*y/size)
		for x := range size {
			i := c.img.PixOffset(x, y)
			c.img.Pix[i], c.img.Pix[i+1], c.img.Pix[i+2], c.img.Pix[i+3] = v, v, v-3, 255
		}
	}
	return c
}

// fillPolygon marks the inside of a polygon (even-odd rule, pixel centres).
func (c *canvas) fillPolygon(pts [][2]float64) {
	var xs []float64
	for y := range c.size {
		fy := float64(y) + 0.5
		xs = xs[:0]
		for i := range pts {
			a, b := pts[i], pts[(i+1)%len(pts)]
			if (a[1] <= fy) != (b[1] <= fy) {
				xs = append(xs, a[0]+(fy-a[1])*(b[0]-a[0])/(b[1]-a[1]))
			}
		}
		sortFloats(xs)
		for k := 0; k+1 < len(xs); k += 2 {
			x0 := max(0, int(math.Ceil(xs[k]-0.5)))
			x1 := min(c.size-1, int(math.Floor(xs[k+1]-0.5)))
			for x := x0; x <= x1; x++ {
				c.mask[y*c.size+x] = true
			}
		}
	}
}

func sortFloats(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// rect marks an axis-aligned rectangle in the mask.
func (c *canvas) rect(x0, y0, x1, y1 float64) {
	c.fillPolygon([][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}})
}

// paint sets pixels inside a shape (given as a predicate) to col.
func (c *canvas) paint(inside func(x, y float64) bool, col color.NRGBA) {
	for y := range c.size {
		for x := range c.size {
			if inside(float64(x)+0.5, float64(y)+0.5) {
				c.img.SetNRGBA(x, y, col)
			}
		}
	}
}

// fabricColour picks the base colour: the fabric is told by its colour
// family, which survives downscaling to 64 px.
func fabricColour(fabric int, rng *rand.Rand) color.NRGBA {
	j := func(v, spread int) uint8 { return uint8(max(0, min(255, v+rng.IntN(2*spread+1)-spread))) }
	switch fabric {
	case 0: // denim: mid blue
		return color.NRGBA{j(55, 15), j(85, 15), j(160, 20), 255}
	case 1: // leather: near black, brownish
		return color.NRGBA{j(50, 10), j(36, 8), j(30, 8), 255}
	case 2: // knit: warm red to orange
		return color.NRGBA{j(200, 20), j(70, 30), j(40, 15), 255}
	default: // chiffon: saturated pastel pink to lilac
		return color.NRGBA{j(225, 15), j(140, 15), j(200, 25), 255}
	}
}

// contrast returns a second colour far from base, for patterns.
func contrast(base color.NRGBA, rng *rand.Rand) color.NRGBA {
	lum := (299*int(base.R) + 587*int(base.G) + 114*int(base.B)) / 1000
	if lum < 120 {
		return color.NRGBA{uint8(235 + rng.IntN(20)), uint8(225 + rng.IntN(30)), uint8(200 + rng.IntN(40)), 255}
	}
	return color.NRGBA{uint8(20 + rng.IntN(30)), uint8(20 + rng.IntN(30)), uint8(40 + rng.IntN(40)), 255}
}

// drawGarment draws g onto a size x size image and fills in its box and
// landmarks.
func drawGarment(g *garment, size int, rng *rand.Rand) *image.NRGBA {
	c := newCanvas(size, rng)
	s := float64(size)
	// A little jitter in place and scale so the box means something.
	cx := s/2 + (rng.Float64()-0.5)*0.08*s
	scale := 0.92 + rng.Float64()*0.12
	top := 0.1*s + rng.Float64()*0.04*s
	u := scale * s // garment unit
	width := []float64{0.30, 0.38, 0.48}[g.fit] * u
	lm := &g.landmarks
	for i := range lm {
		lm[i] = [3]int32{2, 0, 0}
	}
	// A flare or sleeve may reach past the canvas; its landmark stays on
	// the image, as an annotator's would.
	set := func(i int, x, y float64) {
		lm[i] = [3]int32{0, int32(min(max(x, 0), s-1)), int32(min(max(y, 0), s-1))}
	}

	hemY := func(length int) float64 { return top + []float64{0.42, 0.6, 0.8}[length]*u }
	switch g.category {
	case catTop, catOuterwear, catDress:
		bodyBottom := top + 0.45*u
		if g.category == catOuterwear {
			bodyBottom = top + 0.58*u
		}
		shoulder := top + 0.04*u
		half := width / 2
		c.fillPolygon([][2]float64{{cx - half, shoulder}, {cx + half, shoulder},
			{cx + half*1.02, bodyBottom}, {cx - half*1.02, bodyBottom}})
		if g.category == catDress {
			hem := hemY(g.length)
			flare := half * (1.15 + 0.25*float64(g.length))
			c.fillPolygon([][2]float64{{cx - half, top + 0.3*u}, {cx + half, top + 0.3*u},
				{cx + flare, hem}, {cx - flare, hem}})
			bodyBottom = hem
			set(4, cx-half, top+0.3*u)
			set(5, cx+half, top+0.3*u)
			set(6, cx-flare, hem)
			set(7, cx+flare, hem)
		} else {
			set(4, cx-half, bodyBottom)
			set(5, cx+half, bodyBottom)
		}
		// Sleeves: none, a short stub or a long arm down the side.
		armW := 0.11 * u
		switch g.sleeve {
		case 1:
			c.fillPolygon([][2]float64{{cx - half, shoulder}, {cx - half - armW*1.3, shoulder + 0.14*u},
				{cx - half - armW*0.2, shoulder + 0.2*u}, {cx - half, shoulder + 0.12*u}})
			c.fillPolygon([][2]float64{{cx + half, shoulder}, {cx + half + armW*1.3, shoulder + 0.14*u},
				{cx + half + armW*0.2, shoulder + 0.2*u}, {cx + half, shoulder + 0.12*u}})
			set(2, cx-half-armW*0.8, shoulder+0.17*u)
			set(3, cx+half+armW*0.8, shoulder+0.17*u)
		case 2:
			end := shoulder + 0.5*u
			c.fillPolygon([][2]float64{{cx - half, shoulder}, {cx - half - armW*1.2, shoulder + 0.08*u},
				{cx - half - armW*1.4, end}, {cx - half - armW*0.3, end}, {cx - half, shoulder + 0.15*u}})
			c.fillPolygon([][2]float64{{cx + half, shoulder}, {cx + half + armW*1.2, shoulder + 0.08*u},
				{cx + half + armW*1.4, end}, {cx + half + armW*0.3, end}, {cx + half, shoulder + 0.15*u}})
			set(2, cx-half-armW*0.85, end)
			set(3, cx+half+armW*0.85, end)
		}
		set(0, cx-0.1*u, shoulder)
		set(1, cx+0.1*u, shoulder)
	case catSkirt:
		waist := top + 0.22*u
		hem := hemY(g.length) + 0.1*u
		half := width / 2
		flare := half * 1.35
		c.fillPolygon([][2]float64{{cx - half, waist}, {cx + half, waist}, {cx + flare, hem}, {cx - flare, hem}})
		set(0, cx-half, waist)
		set(1, cx+half, waist)
		set(2, cx-flare, hem)
		set(3, cx+flare, hem)
	case catTrousers:
		waist := top + 0.2*u
		hem := hemY(g.length) + 0.1*u
		half := width / 2
		c.rect(cx-half, waist, cx+half, waist+0.14*u)
		c.fillPolygon([][2]float64{{cx - half, waist + 0.1*u}, {cx - 0.02*u, waist + 0.1*u},
			{cx - 0.03*u, hem}, {cx - half - 0.04*u, hem}})
		c.fillPolygon([][2]float64{{cx + 0.02*u, waist + 0.1*u}, {cx + half, waist + 0.1*u},
			{cx + half + 0.04*u, hem}, {cx + 0.03*u, hem}})
		set(0, cx-half, waist)
		set(1, cx+half, waist)
		set(2, cx-half, hem)
		set(3, cx+half, hem)
	}

	base := fabricColour(g.fabric, rng)
	second := contrast(base, rng)
	pattern := texture(g.texture, size, rng)
	x0, y0, x1, y1 := size, size, -1, -1
	for y := range size {
		for x := range size {
			if !c.mask[y*size+x] {
				continue
			}
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			col := base
			if pattern(float64(x)-cx, float64(y)-top) {
				col = second
			}
			c.img.SetNRGBA(x, y, col)
		}
	}
	outline(c)

	skin := color.NRGBA{226, 184, 152, 255}
	if g.neckline >= 0 {
		nw, nd := 0.09*u, 0.09*u
		ny := top + 0.04*u
		switch g.neckline {
		case 0: // crew: a round scoop
			c.paint(func(x, y float64) bool { return (x-cx)*(x-cx)+(y-ny)*(y-ny) < nw*nw && y >= ny }, skin)
		case 1: // v: a deep triangle
			c.paint(func(x, y float64) bool {
				return y >= ny && y < ny+2.2*nd && math.Abs(x-cx) < nw*(1-(y-ny)/(2.2*nd))
			}, skin)
		case 2: // square: a wide box
			c.paint(func(x, y float64) bool { return y >= ny && y < ny+nd && math.Abs(x-cx) < 1.2*nw }, skin)
		}
	}
	drawStyle(c, g, cx, top, u, base)
	if g.category == catOuterwear {
		// An open front: a dark placket line down the middle.
		dark := color.NRGBA{25, 25, 25, 255}
		c.paint(func(x, y float64) bool {
			return math.Abs(x-cx) < 0.012*u+0.5 && y > top+0.13*u && y < top+0.58*u
		}, dark)
	}
	g.bbox = [4]int32{int32(x0), int32(y0), int32(x1 + 1), int32(y1 + 1)}
	return c.img
}

// texture returns whether a point (relative to the garment's top centre)
// takes the contrast colour. Periods are about a tenth of the image, so
// a pattern keeps several clear repeats at 64 px.
func texture(kind, size int, rng *rand.Rand) func(x, y float64) bool {
	s := float64(size)
	switch kind {
	case 1: // striped
		period := s * (0.08 + 0.02*rng.Float64())
		return func(_, y float64) bool { return math.Mod(y+1000*period, period) < period*0.45 }
	case 2: // dotted
		period := s * 0.1
		r := period * 0.28
		return func(x, y float64) bool {
			dx := math.Mod(x+1000*period, period) - period/2
			dy := math.Mod(y+1000*period, period) - period/2
			return dx*dx+dy*dy < r*r
		}
	case 3: // checked
		period := s * 0.11
		return func(x, y float64) bool {
			return (int(math.Floor(x/period))+int(math.Floor(y/period)))%2 == 0
		}
	case 4: // floral: five-petal flowers on a jittered grid
		period := s * 0.16
		type flower struct{ dx, dy float64 }
		jit := make([]flower, 64)
		for i := range jit {
			jit[i] = flower{(rng.Float64() - 0.5) * 0.3 * period, (rng.Float64() - 0.5) * 0.3 * period}
		}
		petal := period * 0.14
		return func(x, y float64) bool {
			gx, gy := math.Floor(x/period), math.Floor(y/period)
			f := jit[(int(gx)*7+int(gy)*13)&63]
			px := x - (gx+0.5)*period - f.dx
			py := y - (gy+0.5)*period - f.dy
			for k := range 5 {
				a := float64(k) * 2 * math.Pi / 5
				qx, qy := px-math.Cos(a)*petal*1.3, py-math.Sin(a)*petal*1.3
				if qx*qx+qy*qy < petal*petal {
					return true
				}
			}
			return false
		}
	case 5: // graphic: one big star on the chest
		r := s * 0.14
		cy := s * 0.22
		return func(x, y float64) bool {
			dx, dy := x, y-cy
			d := math.Hypot(dx, dy)
			if d > r {
				return false
			}
			a := math.Atan2(dy, dx) + math.Pi/2
			spoke := math.Abs(math.Mod(a*5/(2*math.Pi)+1000.5, 1) - 0.5) // 0 at a spoke
			return d < r*(0.45+0.55*(1-2*spoke))
		}
	default: // solid
		return func(_, _ float64) bool { return false }
	}
}

// outline darkens the garment's border so its shape stands out against
// light backgrounds.
func outline(c *canvas) {
	n := c.size
	edge := make([]bool, n*n)
	for y := range n {
		for x := range n {
			if !c.mask[y*n+x] {
				continue
			}
			if x == 0 || y == 0 || x == n-1 || y == n-1 || !c.mask[y*n+x-1] || !c.mask[y*n+x+1] ||
				!c.mask[(y-1)*n+x] || !c.mask[(y+1)*n+x] {
				edge[y*n+x] = true
			}
		}
	}
	for i, e := range edge {
		if e {
			p := c.img.Pix[4*i : 4*i+3]
			p[0], p[1], p[2] = p[0]/3, p[1]/3, p[2]/3
		}
	}
}

// drawStyle adds the style cue: formal garments carry a row of gold
// buttons down the centre, sporty ones two white bands near the hem of
// the mask, casual ones nothing.
func drawStyle(c *canvas, g *garment, cx, top, u float64, base color.NRGBA) {
	switch g.style {
	case 1:
		gold := color.NRGBA{230, 190, 40, 255}
		r := 0.028 * u
		for k := range 4 {
			by := top + (0.17+0.08*float64(k))*u
			bx := cx + 0.05*u
			c.paint(func(x, y float64) bool { return (x-bx)*(x-bx)+(y-by)*(y-by) < r*r }, gold)
		}
	case 2:
		white := color.NRGBA{250, 250, 250, 255}
		if base.R > 200 && base.G > 200 {
			white = color.NRGBA{20, 120, 60, 255}
		}
		// Bands run across the garment at two fixed heights within its mask.
		n := c.size
		for _, h := range []float64{0.3, 0.36} {
			y0 := int(top + h*u)
			for y := y0; y < y0+max(2, int(0.025*u)) && y < n; y++ {
				for x := range n {
					if c.mask[y*n+x] {
						c.img.SetNRGBA(x, y, white)
					}
				}
			}
		}
	}
}
