package file

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	xunicode "golang.org/x/text/encoding/unicode"
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
// Western file) → windows-1252; pairs of high bytes → Chinese: big5 if that
// reading gives more common Chinese characters than gb18030's, else gb18030.
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
	// GB18030 and Big5 share most byte pairs: decode both ways and keep the
	// reading that gives common Chinese characters (the other gives rare
	// ones, or invalid pairs). Big5 trail bytes can be ASCII (臺 is BB 4F),
	// so a Big5 file can look single-byte: a Western reading wins only with
	// more accented letters than the Chinese reading has common characters.
	big5 := chineseScore(traditionalchinese.Big5.NewDecoder(), head)
	gb := chineseScore(simplifiedchinese.GB18030.NewDecoder(), head)
	if singleByte(head) && westernScore(head) >= max(big5, gb) {
		return "windows-1252"
	}
	if big5 > gb {
		return "big5"
	}
	return "gb18030"
}

// westernScore counts the high bytes standing alone that Windows-1252
// reads as letters (é, ü, ß), the mark of a Western single-byte file.
func westernScore(b []byte) int {
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] < 0x80 {
			continue
		}
		if i+1 < len(b) && b[i+1] >= 0x80 {
			i++
			continue
		}
		if r := charmap.Windows1252.DecodeByte(b[i]); unicode.IsLetter(r) {
			n++
		}
	}
	return n
}

// frequentChinese are characters frequent in Chinese text and in city data
// (places, weather, incidents), in simplified and traditional forms.
var frequentChinese = func() map[rune]bool {
	const chars = "的一是不了在人有我他这這个個们們中来來上大为為和国國地到以说說时時要就出会會可也你对對生能而子那得于於着著下自之年过過发發后後作里裡用道行所然家种種事成方多经經么麼去法学學如都同现現当當没沒动動面起看定天分还還进進好小部其些主样樣理心本前开開但因只从從想实實日者意无無力它与與长長把机機十民第公此已工使情明性知全三又关關点點正业業外将將两兩高间間由问問很最重并並物手应應战戰向头頭文体體政美相见見被利什二等产產或新己制身果加西月话話合回特代内內信表化老给給世位次度门門任常先海通教儿兒原东東声聲提立及比员員解水名真论論处處走义義各入几幾口认認条條平系气氣题題活更别別打女变變四神总總何电電数數安少报報才结結反受目太量再感建务務做接必场場件计計管期市直德资資命山金指许許统統区區保至队隊形社便空决決治展马馬科司五基眼书書非则則听聽白却卻界达達光放强強即像难難且权權思王象完设設式色路记記南品住告类類求据據程北边邊死张張该該交规規万萬取拉格望觉覺术術领領共确確传傳师師观觀清今切院让讓识識候带帶导導争爭运運笑飞飛风風步改收根干造言联聯持组組每济濟车車亲親极極林服快办辦议議往元英士证證近失转轉夫令准准布始怎呢存未远遠叫台臺单單影具罗羅字爱愛击擊流备備兵连連调調深商算质質团團集百需价價花党黨华華城石级級整府离離况況亚亞请請技际際约約示复復病息究线線似官火断斷精满滿支视視消越器容照须須九增研写寫称稱企八功吗嗎包片史委乎查轻輕易早曾除农農找装裝广廣显顯吧阿李标標谈談吃图圖念六引历歷首医醫局突专專费費号號尽盡另周较較注语語仅僅考落青随隨选選列武红紅响響虽雖推势勢参參希古众眾构構房半节節土投某案黑维維革划劃敌敵致陈陳律足态態护護七兴興派孩验驗责責营營星够夠章音跟志底站严嚴巴例防族供效续續施留讲講型料终終答紧緊黄黃绝絕奇察母京段依批群项項故按河米围圍江织織害斗双雙境客纪紀采举舉杀殺攻父苏蘇密低朝友诉訴止细細愿千值仍男钱錢破网網热熱助倒育属屬坐帝限船脸臉职職速刻乐樂否刚剛威毛状狀率甚独獨球般普怕弹彈校苦创創假久错錯承印晚兰蘭试試股拿脑腦预預谁誰益阳陽若哪微尼继繼送急血惊驚伤傷素药藥适適波夜省初喜卫衛源食险險待述陆陸习習置居劳勞财財环環排福纳納欢歡雷警获獲模充负負云雲停木游龙龍树樹疑层層冷洲冲衝射略范竟句室异異激汉漢村哈策演简簡卡罪判担擔州静靜退既衣您宗积積余痛检檢差富灵靈协協角占配征修皮挥揮胜勝降阶階审審沉坚堅善妈媽刘劉读讀啊超免压壓银銀买買皇养養伊怀懷执執副乱亂抗犯追帮幫宣佛岁歲航优優怪香著田铁鐵控税稅左右份穿艺藝背阵陣草脚腳概恶惡块塊顿頓敢守酒岛島托央户戶烈洋哥索胡款靠评評版宝寶座释釋景顾顧弟登货貨互付伯慢欧歐换換闻聞危忙核暗姐介坏壞讨討丽麗良序升监監临臨亮露永呼味野架域沙掉括舰艦鱼魚杂雜误誤湾灣吉减減编編楚肯测測败敗屋跑梦夢散温溫困剑劍渐漸封救贵貴枪槍缺楼樓县縣街桥橋园園镇鎮乡鄉晴雨雪雾霧站区區路号號巷弄栋棟层層楼樓店厂廠灾災警"
	m := make(map[rune]bool, len(chars))
	for _, r := range chars {
		m[r] = true
	}
	return m
}()

// chineseScore counts the frequent Chinese characters in head decoded by
// dec, less twice the invalid sequences.
func chineseScore(dec *encoding.Decoder, head []byte) int {
	text, _ := dec.Bytes(head)
	score := 0
	for _, r := range string(text) {
		switch {
		case r == utf8.RuneError:
			score -= 2
		case frequentChinese[r]:
			score++
		}
	}
	return score
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
		return xunicode.UTF16(xunicode.LittleEndian, xunicode.ExpectBOM).NewDecoder().Reader(r), enc
	case "utf-16le":
		return xunicode.UTF16(xunicode.LittleEndian, xunicode.UseBOM).NewDecoder().Reader(r), enc
	case "utf-16be":
		return xunicode.UTF16(xunicode.BigEndian, xunicode.UseBOM).NewDecoder().Reader(r), enc
	case "big5":
		return traditionalchinese.Big5.NewDecoder().Reader(r), enc
	case "latin-1":
		return charmap.ISO8859_1.NewDecoder().Reader(r), enc
	case "windows-1252":
		return charmap.Windows1252.NewDecoder().Reader(r), enc
	}
	return r, enc
}
