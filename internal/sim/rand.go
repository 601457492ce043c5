package sim

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// rng returns a generator that depends only on the seed, a label and
// numbers (an interval index, an entity number): every part of the world and
// every interval of every feed draws from its own stream, so output does not
// depend on generation order and a live run equals a backfill.
func rng(seed int64, label string, n ...int64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(label))
	var b [8]byte
	for _, v := range n {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// poisson draws from a Poisson distribution (Knuth for small means, normal
// approximation above 50).
func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		v := int(math.Round(mean + math.Sqrt(mean)*r.NormFloat64()))
		if v < 0 {
			return 0
		}
		return v
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// pick returns an index drawn with the given weights.
func pick(r *rand.Rand, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := r.Float64() * sum
	for i, w := range weights {
		x -= w
		if x < 0 {
			return i
		}
	}
	return len(weights) - 1
}
