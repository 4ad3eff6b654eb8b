package synth

import (
	"testing"

	"github.com/uias/uias/services/identity/finger"
)

// BenchmarkMatch is one 1:1 comparison as Authenticate makes it (parse
// and prepare both records, score), cycling through 64 record pairs, half
// genuine; BenchmarkParseBoth is its floor.
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
