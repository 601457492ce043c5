package extracts

import (
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// GB18030 output: ASCII runs are copied as they are; every other rune of
// the Basic Multilingual Plane is looked up in a table built once from
// golang.org/x/text's encoder (the reference of the mapping), and the few
// runes beyond it go through that encoder. The bytes are the encoder's.

var (
	gbOnce  sync.Once
	gbCode  []uint32 // BMP rune → its GB18030 bytes, big-endian in the low gbLen bytes
	gbLen   []uint8
	gbSlowE = simplifiedchinese.GB18030.NewEncoder()
	gbSlowM sync.Mutex
)

func gbTable() {
	gbCode = make([]uint32, 0x10000)
	gbLen = make([]uint8, 0x10000)
	enc := simplifiedchinese.GB18030.NewEncoder()
	var src [4]byte
	dst := make([]byte, 16)
	for r := rune(0x80); r < 0x10000; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // surrogates: never decoded from UTF-8
		}
		n := utf8.EncodeRune(src[:], r)
		enc.Reset()
		nd, _, err := enc.Transform(dst, src[:n], true)
		if err != nil || nd == 0 || nd > 4 {
			continue // left to the slow path
		}
		var c uint32
		for _, b := range dst[:nd] {
			c = c<<8 | uint32(b)
		}
		gbCode[r], gbLen[r] = c, uint8(nd)
	}
}

// appendGB18030 appends src (UTF-8) encoded in GB18030 to dst. Invalid
// UTF-8 becomes U+FFFD, as with the x/text encoder.
func appendGB18030(dst, src []byte) []byte {
	gbOnce.Do(gbTable)
	for i := 0; i < len(src); {
		// ASCII run.
		j := i
		for j < len(src) && src[j] < utf8.RuneSelf {
			j++
		}
		dst = append(dst, src[i:j]...)
		if j == len(src) {
			break
		}
		r, size := utf8.DecodeRune(src[j:])
		i = j + size
		if r < 0x10000 {
			if n := gbLen[r]; n > 0 {
				c := gbCode[r]
				switch n {
				case 2:
					dst = append(dst, byte(c>>8), byte(c))
				case 4:
					dst = append(dst, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
				default:
					for k := int(n) - 1; k >= 0; k-- {
						dst = append(dst, byte(c>>(8*k)))
					}
				}
				continue
			}
		}
		dst = appendGBSlow(dst, r)
	}
	return dst
}

// appendGBSlow encodes one rune with the x/text encoder.
func appendGBSlow(dst []byte, r rune) []byte {
	var src [4]byte
	n := utf8.EncodeRune(src[:], r)
	var out [16]byte
	gbSlowM.Lock()
	gbSlowE.Reset()
	nd, _, err := gbSlowE.Transform(out[:], src[:n], true)
	gbSlowM.Unlock()
	if err != nil {
		return append(dst, '?')
	}
	return append(dst, out[:nd]...)
}
