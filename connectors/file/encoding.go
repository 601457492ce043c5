package file

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
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
	case "big5", "big-5", "cp950":
		return "big5"
	case "latin-1", "latin1", "iso-8859-1", "iso8859-1":
		return "latin-1"
	case "windows-1252", "cp1252":
		return "windows-1252"
	}
	return e
}

// Encodings are the file.encoding values (besides auto).
var Encodings = []string{"utf-8", "gb18030", "gbk", "big5", "utf-16", "utf-16le", "utf-16be", "latin-1", "windows-1252"}

// detectEncoding guesses the encoding of a file from its first bytes: a
// UTF-16 byte order mark → utf-16; a UTF-8 BOM or valid UTF-8 → utf-8;
// bytes above 0x7F that mostly stand alone between ASCII (é, ü, ° in a
// Western file) → windows-1252; anything else → gb18030, whose characters
// are pairs of high bytes (Big5 is not told apart from it: declare big5).
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
	if singleByte(head) {
		return "windows-1252"
	}
	return "gb18030"
}

// singleByte says whether the high bytes (≥ 0x80) of b look like a
// single-byte Western encoding. The common characters of GB2312/GBK/GB18030
// and Big5 are two high bytes (lead and trail both ≥ 0xA1, or ≥ 0x81 and
// ≥ 0x80), so in Chinese text high bytes come in pairs and runs; in Latin-1
// text an accented letter stands between ASCII ones (Zürich, 25°C). A
// trail byte can be ASCII (0x40–0x7E) in GBK and Big5, but only for rarer
// characters, so a high byte followed by ASCII counts as standing alone.
func singleByte(b []byte) bool {
	alone, paired := 0, 0
	for i := 0; i < len(b); i++ {
		if b[i] < 0x80 {
			continue
		}
		if i+1 < len(b) && b[i+1] >= 0x80 {
			paired++
			i++ // the trail byte
			continue
		}
		alone++
	}
	return alone > paired
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
	case "big5":
		return traditionalchinese.Big5.NewDecoder().Reader(r), enc
	case "latin-1":
		return charmap.ISO8859_1.NewDecoder().Reader(r), enc
	case "windows-1252":
		return charmap.Windows1252.NewDecoder().Reader(r), enc
	}
	return r, enc
}
