package extracts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// transform is what happens to a row between the query and the writer:
// dropped columns, masked or hashed values, suppressed small counts.
type rowTransform struct {
	keep     []int          // source column index per output column
	mask     map[int]bool   // by source index
	hash     map[int]string // source index → salt
	suppress map[int]bool   // by source index
	k        int64          // suppress below
	out      []any
}

func newTransform(d Definition, cols []Column, k int) (*rowTransform, []Column, error) {
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToLower(c.Name)] = i
	}
	t := &rowTransform{mask: map[int]bool{}, hash: map[int]string{}, suppress: map[int]bool{}, k: int64(k)}
	drop := map[int]bool{}
	for _, r := range d.PII {
		i, ok := idx[strings.ToLower(r.Column)]
		if !ok {
			return nil, nil, fmt.Errorf("%w %q: pii 列 %q 不在输出中 (pii column %q is not among the output columns %s)", ErrDefinition, d.Name, r.Column, r.Column, colNames(cols))
		}
		switch r.Action {
		case "mask":
			t.mask[i] = true
		case "hash":
			salt := r.Salt
			if salt == "" {
				salt = d.Name
			}
			t.hash[i] = salt
		case "drop":
			drop[i] = true
		}
	}
	for _, c := range d.Suppress {
		i, ok := idx[strings.ToLower(c)]
		if !ok {
			return nil, nil, fmt.Errorf("%w %q: suppress 列 %q 不在输出中 (suppress column %q is not among the output columns %s)", ErrDefinition, d.Name, c, c, colNames(cols))
		}
		if k > 0 {
			t.suppress[i] = true
		}
	}
	var out []Column
	for i, c := range cols {
		if drop[i] {
			continue
		}
		if t.mask[i] || t.hash[i] != "" {
			c.Type = "VARCHAR"
		}
		t.keep = append(t.keep, i)
		out = append(out, c)
	}
	t.out = make([]any, len(t.keep))
	return t, out, nil
}

func colNames(cols []Column) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// apply maps a normalised source row to the output row (reused buffer).
func (t *rowTransform) apply(row []any) []any {
	for o, i := range t.keep {
		v := row[i]
		switch {
		case v == nil:
		case t.mask[i]:
			v = Mask(fmt.Sprint(v))
		case t.hash[i] != "":
			sum := sha256.Sum256([]byte(t.hash[i] + fmt.Sprint(v)))
			v = hex.EncodeToString(sum[:])
		case t.suppress[i]:
			switch n := v.(type) {
			case int64:
				if n < t.k {
					v = nil
				}
			case float64:
				if n < float64(t.k) {
					v = nil
				}
			}
		}
		t.out[o] = v
	}
	return t.out
}

// Mask hides the middle of a value: 13812345678 → 138****5678 (8 or more
// characters keep the first 3 and last 4), 张三丰 → 张*丰, shorter ones
// become all *.
func Mask(s string) string {
	r := []rune(s)
	n := len(r)
	switch {
	case n >= 8:
		return string(r[:3]) + strings.Repeat("*", n-7) + string(r[n-4:])
	case n >= 3:
		return string(r[:1]) + strings.Repeat("*", n-2) + string(r[n-1:])
	default:
		return strings.Repeat("*", n)
	}
}
