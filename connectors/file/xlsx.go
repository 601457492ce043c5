package file

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xuri/excelize/v2"

	"citybrain/connectors"
)

// xlsxOptions bound what a workbook may unpack to: sheets larger than
// UnzipXMLSizeLimit stream through a temporary file instead of memory, and
// a workbook that inflates beyond UnzipSizeLimit (a zip bomb) is refused.
var xlsxOptions = excelize.Options{UnzipSizeLimit: 4 << 30, UnzipXMLSizeLimit: 16 << 20}

// xlsxRows reads one sheet of a workbook row by row.
type xlsxRows struct {
	wb    *excelize.File
	rows  *excelize.Rows
	size  int64 // file size, reported as consumed at the end
	done  bool
	n     int64 // rows consumed (the sheet's row number)
	after int64
	width int // header columns; rows are padded to it (0: headerless)
}

// openXLSX opens a workbook's sheet and reads its header row if it has one
// (the first row with a non-empty cell).
func (s *Source) openXLSX(path string, after int64) (opened, error) {
	st, err := os.Stat(path)
	if err != nil {
		return opened{}, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	wb, err := excelize.OpenFile(path, xlsxOptions)
	if err != nil {
		return opened{}, fmt.Errorf("%w: %s: not a readable xlsx workbook: %v", connectors.ErrPermanent, path, err)
	}
	sheet := s.cfg.Sheet
	if sheet == "" {
		sheets := wb.GetSheetList()
		if len(sheets) == 0 {
			wb.Close()
			return opened{}, fmt.Errorf("%w: %s: workbook has no sheet", connectors.ErrPermanent, path)
		}
		sheet = sheets[0]
	}
	rows, err := wb.Rows(sheet)
	if err != nil {
		wb.Close()
		return opened{}, fmt.Errorf("%w: %s: sheet %q: %v (sheets: %v)", connectors.ErrPermanent, path, sheet, err, wb.GetSheetList())
	}
	x := &xlsxRows{wb: wb, rows: rows, size: st.Size(), after: after}
	if !s.cfg.Header {
		return opened{rows: x, fixed: true}, nil
	}
	for rows.Next() {
		x.n++
		cells, err := rows.Columns()
		if err != nil {
			x.Close()
			return opened{}, fmt.Errorf("%w: %s: sheet %q header row %d: %v", connectors.ErrPermanent, path, sheet, x.n, err)
		}
		if blank(cells) {
			continue
		}
		cells = trimTrailingBlank(cells)
		x.width = len(cells)
		return opened{rows: x, fixed: true, header: cells}, nil
	}
	if err := rows.Error(); err != nil {
		x.Close()
		return opened{}, fmt.Errorf("%w: %s: sheet %q: %v", connectors.ErrPermanent, path, sheet, err)
	}
	return opened{rows: x}, nil // an empty sheet: no rows, nothing to bind
}

func (x *xlsxRows) next() (row, error) {
	for x.rows.Next() {
		x.n++
		if x.n <= x.after {
			continue
		}
		cells, err := x.rows.Columns()
		if err != nil {
			return row{pos: x.n}, err
		}
		if blank(cells) {
			continue
		}
		if x.width > 0 {
			if len(cells) > x.width {
				cells = trimTrailingBlank(cells)
			}
			for len(cells) < x.width {
				cells = append(cells, "")
			}
		}
		return row{pos: x.n, cells: cells}, nil
	}
	if err := x.rows.Error(); err != nil {
		return row{pos: x.n}, err
	}
	x.done = true
	return row{}, io.EOF
}

func (x *xlsxRows) consumed() int64 {
	if x.done {
		return x.size
	}
	return 0
}

// encode: a sheet row's reject is the row as one CSV record.
func (x *xlsxRows) encode(cells []string) []byte { return encodeCSV(cells, ',') }

func (x *xlsxRows) Close() error {
	x.rows.Close()
	return x.wb.Close()
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func trimTrailingBlank(cells []string) []string {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	return cells
}
