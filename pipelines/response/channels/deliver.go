package channels

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry is how Deliver repeats a failed Send.
type Retry struct {
	// Max is the most attempts in all, the first included; below 1 means 1.
	Max int
	// Base and Cap bound the wait before attempt n+1: a random duration
	// in [0, min(Cap, Base·2^(n-1))] (exponential backoff, full jitter).
	// Zero means 1s and 1m.
	Base, Cap time.Duration
	// Sleep waits d or until ctx ends, returning ctx's error then; nil
	// means a timer. Tests pass one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry: 5 attempts, waits up to 2s, 4s, 8s, 16s.
func DefaultRetry() Retry {
	return Retry{Max: 5, Base: 2 * time.Second, Cap: time.Minute}
}

// Attempt is one Send made by Deliver.
type Attempt struct {
	// N counts attempts from 1.
	N int
	// At is when the attempt started; Took how long it lasted.
	At   time.Time
	Took time.Duration
	// Err is nil for the attempt that delivered, else Send's error.
	Err error
}

// Deliver sends m to to on ch, retrying as p says, and returns every
// attempt made, in order: it stops at the first success (the last
// attempt's Err is nil), at a permanent error, after p.Max attempts, or
// when ctx ends (no attempt is started after that; none at all when ctx
// has ended already). An attempt whose error is temporary and that is not
// the last is followed by a wait.
func Deliver(ctx context.Context, ch Channel, to Recipient, m Message, p Retry) []Attempt {
	maxAttempts := max(p.Max, 1)
	sleep := p.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var out []Attempt
	for n := 1; ctx.Err() == nil; n++ {
		start := time.Now()
		err := ch.Send(ctx, to, m)
		out = append(out, Attempt{N: n, At: start, Took: time.Since(start), Err: err})
		if err == nil || !Temporary(err) || n >= maxAttempts {
			break
		}
		if sleep(ctx, backoff(p, n)) != nil {
			break
		}
	}
	return out
}

// backoff is the wait after the n-th attempt: full jitter over
// min(Cap, Base·2^(n-1)).
func backoff(p Retry, n int) time.Duration {
	base, ceil := p.Base, p.Cap
	if base <= 0 {
		base = time.Second
	}
	if ceil <= 0 {
		ceil = time.Minute
	}
	d := base
	for i := 1; i < n && d < ceil; i++ {
		if d > ceil/2 {
			d = ceil
		} else {
			d *= 2
		}
	}
	d = min(d, ceil)
	return rand.N(d + 1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
