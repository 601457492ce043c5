package extracts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// rowTransform is what happens to a batch between the query and the
// writer: dropped columns, masked or hashed values, suppressed small counts.
type rowTransform struct {
	keep     []int          // source column index per output column
	mask     map[int]bool   // by source index
	hash     map[int]string // source index → salt
	suppress map[int]bool   // by source index
	k        int64          // suppress below
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
	return t, out, nil
}

func colNames(cols []Column) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// apply maps a batch to the output columns: a new batch each call (a
// writer may still be encoding the last one), sharing the columns that
// pass through unchanged. Masked and hashed cells take the text of the value as
// database/sql gives it (fmt.Sprint), as they always have.
func (t *rowTransform) apply(b *colBatch) *colBatch {
	out := &colBatch{n: b.n, cols: make([]colVec, 0, len(t.keep))}
	for _, i := range t.keep {
		src := &b.cols[i]
		switch {
		case t.mask[i] || t.hash[i] != "":
			dst := &colVec{}
			dst.reset(kString, b.n)
			for r := range b.n {
				v := src.value(r)
				switch {
				case v == nil:
					dst.setNull(r, b.n)
				case t.mask[i]:
					dst.strs[r] = Mask(fmt.Sprint(v))
				default:
					sum := sha256.Sum256([]byte(t.hash[i] + fmt.Sprint(v)))
					dst.strs[r] = hex.EncodeToString(sum[:])
				}
			}
			out.cols = append(out.cols, *dst)
		case t.suppress[i] && (src.k == kInt || src.k == kFloat):
			dst := &colVec{}
			*dst = *src
			dst.valid = nil
			if src.valid != nil {
				dst.valid = append([]bool(nil), src.valid...)
			}
			for r := range b.n {
				if src.null(r) {
					continue
				}
				if _, ok := src.over[r]; ok {
					continue
				}
				if src.k == kInt && src.ints[r] < t.k || src.k == kFloat && src.floats[r] < float64(t.k) {
					dst.setNull(r, b.n)
				}
			}
			out.cols = append(out.cols, *dst)
		default:
			out.cols = append(out.cols, *src)
		}
	}
	return out
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
