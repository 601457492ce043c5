package file

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// sniffBytes is how much of a file `encoding: auto` looks at.
const sniffBytes = 64 << 10

// normEncoding is the canonical name of a configured encoding ("" → utf-8).
func normEncoding(e string) string {
	switch e = strings.ToLower(strings.TrimSpace(e)); e {
	case "", "utf-8", "utf8":
		return "utf-8"
	case "utf-16", "utf16":
		return "utf-16"
	case "utf-16le", "utf16le":
		return "utf-16le"
	case "utf-16be", "utf16be":
		return "utf-16be"
	}
	return e
}

// detectEncoding guesses the encoding of a file from its first bytes: a
// UTF-16 byte order mark → utf-16; a UTF-8 BOM or valid UTF-8 → utf-8;
// anything else → gb18030 (which decodes every byte sequence, so a wrong
// guess shows as mojibake in the data, never as a failed read).
func detectEncoding(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		return "utf-8"
	case bytes.HasPrefix(head, []byte("\xff\xfe")), bytes.HasPrefix(head, []byte("\xfe\xff")):
		return "utf-16"
	}
	// A rune cut by the end of the sniffed window is not an error.
	if len(head) == sniffBytes {
		for i := 1; i <= utf8.UTFMax && i <= len(head); i++ {
			if utf8.RuneStart(head[len(head)-i]) {
				if !utf8.FullRune(head[len(head)-i:]) {
					head = head[:len(head)-i]
				}
				break
			}
		}
	}
	if utf8.Valid(head) {
		return "utf-8"
	}
	return "gb18030"
}

// decode wraps r (a file's bytes) in the decoder of the configured encoding;
// for auto it sniffs the first 64 KiB. It returns the encoding used.
func decode(r io.Reader, encoding string) (io.Reader, string) {
	enc := normEncoding(encoding)
	if enc == "auto" {
		br := bufio.NewReaderSize(r, sniffBytes)
		head, _ := br.Peek(sniffBytes)
		enc = detectEncoding(head)
		r = br
	}
	switch enc {
	case "gb18030":
		return simplifiedchinese.GB18030.NewDecoder().Reader(r), enc
	case "gbk":
		return simplifiedchinese.GBK.NewDecoder().Reader(r), enc
	case "utf-16":
		return unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Reader(r), enc
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder().Reader(r), enc
	case "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder().Reader(r), enc
	}
	return r, enc
}
