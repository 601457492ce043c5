package mapping

import (
	"reflect"
	"strings"
	"testing"
)

func TestPadSortedAndBindCache(t *testing.T) {
	m, err := New(calls(t), Spec{Fields: map[string]FieldSpec{
		"id": {Column: "id"}, "reported_at": {Parts: map[string]string{"year": "y", "month": "m", "day": "d"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ header, row, wantH, wantR []string }{
		{[]string{"d", "id", "y"}, []string{"1", "a", "2013"}, []string{"d", "id", "m", "y"}, []string{"1", "a", "", "2013"}},
		{[]string{"y", "id", "d"}, []string{"2013", "a", "1"}, []string{"d", "id", "m", "y"}, []string{"1", "a", "", "2013"}},
		{[]string{"d", "extra", "id", "m", "y"}, []string{"1", "x", "a", "3", "2013"}, []string{"d", "extra", "id", "m", "y"}, []string{"1", "x", "a", "3", "2013"}},
	} {
		in := append([]string(nil), tt.header...)
		h, r := m.PadSorted(tt.header, tt.row)
		if !reflect.DeepEqual(h, tt.wantH) || !reflect.DeepEqual(r, tt.wantR) {
			t.Errorf("PadSorted(%v, %v) = %v, %v; want %v, %v", tt.header, tt.row, h, r, tt.wantH, tt.wantR)
		}
		if !reflect.DeepEqual(in, tt.header) {
			t.Errorf("PadSorted modified its header: %v", tt.header)
		}
	}

	c := NewBindCache(m)
	b1, err := c.Bind([]string{"id", "y", "m", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := c.Bind([]string{"id", "y", "m", "d"}); b2 != b1 {
		t.Error("the same header was bound twice")
	}
	if _, err := c.Bind([]string{"id", "y"}); err == nil || !strings.Contains(err.Error(), "字段与映射不符") {
		t.Errorf("Bind of a header missing columns = %v", err)
	}
}
