package synth

import (
	"testing"

	"github.com/uias/uias/services/identity/finger"
)

// BenchmarkScore is one 1:1 comparison as Authenticate makes it: a
// prepared probe against a prepared enrolled template (identity keeps
// those in memory), cycling through 64 record pairs, half genuine.
// BenchmarkMatch is the cold comparison (parse and prepare both records,
// score); BenchmarkParseBoth is the floor of both.
func BenchmarkScore(b *testing.B) {
	pairs := benchPairs()
	ts := make([][2]*finger.Template, len(pairs))
	for i, p := range pairs {
		for k := range 2 {
			r, err := finger.Parse(p[k])
			if err != nil {
				b.Fatal(err)
			}
			if ts[i][k], err = finger.Prepare(r, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	i := 0
	for b.Loop() {
		p := ts[i%len(ts)]
		i++
		finger.Score(p[0], p[1])
	}
}

func BenchmarkMatch(b *testing.B) {
	pairs := benchPairs()
	i := 0
	for b.Loop() {
		p := pairs[i%len(pairs)]
		i++
		ra, _ := finger.Parse(p[0])
		rb, _ := finger.Parse(p[1])
		ta, _ := finger.Prepare(ra, 0)
		tb, _ := finger.Prepare(rb, 0)
		finger.Score(ta, tb)
	}
}

func BenchmarkParseBoth(b *testing.B) {
	pairs := benchPairs()
	i := 0
	for b.Loop() {
		p := pairs[i%len(pairs)]
		i++
		_, _ = finger.Parse(p[0])
		_, _ = finger.Parse(p[1])
	}
}

func benchPairs() [][2][]byte {
	p := Default(101)
	out := make([][2][]byte, 64)
	for i := range out {
		f, g := NewFinger(p, i), NewFinger(p, i)
		if i%2 == 1 {
			g = NewFinger(p, i+64)
		}
		out[i] = [2][]byte{f.Impression(0), g.Impression(1)}
	}
	return out
}
