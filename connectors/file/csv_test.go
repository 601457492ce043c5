package file

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestSplitFields(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delim byte
		want  []string
		err   string // substring of the error; "" means success
	}{
		{"plain", "a,b,c", ',', []string{"a", "b", "c"}, ""},
		{"quoted", `"a","b,c",d`, ',', []string{"a", "b,c", "d"}, ""},
		{"doubled quotes", `"say ""hi""",x`, ',', []string{`say "hi"`, "x"}, ""},
		{"only doubled quote", `""""`, ',', []string{`"`}, ""},
		{"empty fields", ",,", ',', []string{"", "", ""}, ""},
		{"empty quoted", `"",""`, ',', []string{"", ""}, ""},
		{"empty record", "", ',', []string{""}, ""},
		{"trailing delimiter", "a,b,", ',', []string{"a", "b", ""}, ""},
		{"trailing delimiter after quoted", `"a",`, ',', []string{"a", ""}, ""},
		{"pipe", `a|"b|c"|d`, '|', []string{"a", "b|c", "d"}, ""},
		{"pipe leaves commas", "a,b|c", '|', []string{"a,b", "c"}, ""},
		{"tab", "a\tb\t\"c\td\"", '\t', []string{"a", "b", "c\td"}, ""},
		{"semicolon", "1,5;2", ';', []string{"1,5", "2"}, ""},
		{"spaces kept", " a , b ", ',', []string{" a ", " b "}, ""},
		{"quoted newline", "a,\"line1\nline2\",b", ',', []string{"a", "line1\nline2", "b"}, ""},
		{"quoted CRLF", "\"x\r\ny\"", ',', []string{"x\r\ny"}, ""},
		{"chinese", `官园,"西城区, 北京"`, ',', []string{"官园", "西城区, 北京"}, ""},
		{"real weather line", `1,2013,3,1,0,4,4,14,20,300,69,-0.7,1023,-18.8,0,"NNW",4.4,"Guanyuan"`, ',',
			[]string{"1", "2013", "3", "1", "0", "4", "4", "14", "20", "300", "69", "-0.7", "1023", "-18.8", "0", "NNW", "4.4", "Guanyuan"}, ""},
		{"bare quote", `a,b"c,d`, ',', nil, "field 2"},
		{"bare quote at end", `a,b"`, ',', nil, "field 2"},
		{"unclosed quote", `a,"bc`, ',', nil, "field 2"},
		{"text after closing quote", `"a"b,c`, ',', nil, "text after closing quote"},
		{"space after closing quote", `"a" ,c`, ',', nil, "text after closing quote"},
		{"quote then other delimiter", `"a",b`, '|', nil, "text after closing quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitFields([]byte(tt.in), tt.delim, nil)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("splitFields(%q) = %q, want error", tt.in, got)
				}
				if !errors.Is(err, errQuote) || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q: want errQuote mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitFields(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitFields(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitFieldsReusesDst(t *testing.T) {
	dst := make([]string, 0, 8)
	a, err := splitFields([]byte("a,b,c"), ',', dst)
	if err != nil {
		t.Fatal(err)
	}
	b, err := splitFields([]byte("x"), ',', a)
	if err != nil || !reflect.DeepEqual(b, []string{"x"}) {
		t.Errorf("got %q, %v", b, err)
	}
}

type logical struct {
	raw        string
	line       int64
	unbalanced bool
}

func readAll(t *testing.T, in string) []logical {
	t.Helper()
	rr := newRecordReader(strings.NewReader(in))
	var out []logical
	for i := 0; i < 10000; i++ {
		raw, line, unb, err := rr.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, logical{string(raw), line, unb})
	}
	t.Fatal("recordReader does not end")
	return nil
}

func TestRecordReader(t *testing.T) {
	unclosed := `2,"bad,x` + "\n"
	var many strings.Builder
	many.WriteString("1,a\n")
	many.WriteString(unclosed)
	for i := 3; i <= 100; i++ {
		many.WriteString(`"ok",` + strings.Repeat("x", i%5) + "\n")
	}
	manyWant := []logical{{"1,a", 1, false}, {`2,"bad,x`, 2, true}}
	for i := 3; i <= 100; i++ {
		manyWant = append(manyWant, logical{`"ok",` + strings.Repeat("x", i%5), int64(i), false})
	}
	tests := []struct {
		name string
		in   string
		want []logical
	}{
		{"LF", "a\nb\nc\n", []logical{{"a", 1, false}, {"b", 2, false}, {"c", 3, false}}},
		{"CRLF", "a\r\nb\r\nc\r\n", []logical{{"a", 1, false}, {"b", 2, false}, {"c", 3, false}}},
		{"lone CR", "a\rb\rc\r", []logical{{"a", 1, false}, {"b", 2, false}, {"c", 3, false}}},
		{"lone CR no final", "a\rb\rc", []logical{{"a", 1, false}, {"b", 2, false}, {"c", 3, false}}},
		{"mixed endings", "a\r\nb\nc\rd\n", []logical{{"a", 1, false}, {"b", 2, false}, {"c", 3, false}, {"d", 4, false}}},
		{"last line without newline", "a\nb", []logical{{"a", 1, false}, {"b", 2, false}}},
		{"empty lines kept", "a\n\nb\n", []logical{{"a", 1, false}, {"", 2, false}, {"b", 3, false}}},
		{"empty input", "", nil},
		{"multi-line quoted record", "h\n1,\"two\nlines\",x\n3,y\n", []logical{{"h", 1, false}, {"1,\"two\nlines\",x", 2, false}, {"3,y", 4, false}}},
		{"multi-line CRLF", "1,\"a\r\nb\r\nc\"\r\n2\r\n", []logical{{"1,\"a\nb\nc\"", 1, false}, {"2", 4, false}}},
		{"quoted line with escaped quotes", "\"a\"\"b\",c\nd\n", []logical{{"\"a\"\"b\",c", 1, false}, {"d", 2, false}}},
		{"unbalanced quote to EOF", "1\n2,\"x\n3,\"y\"\n4\n", []logical{{"1", 1, false}, {"2,\"x", 2, true}, {"3,\"y\"", 3, false}, {"4", 4, false}}},
		{"unbalanced quote on last line", "1\n2,\"x", []logical{{"1", 1, false}, {"2,\"x", 2, true}}},
		{"unbalanced quote beyond max lines", many.String(), manyWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRecordReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 3<<20) // longer than the 1 MiB buffer
	got := readAll(t, "a\n"+long+"\nb")
	if len(got) != 3 || got[1].raw != long || got[1].line != 2 || got[2].line != 3 {
		t.Errorf("got %d records", len(got))
	}
}
