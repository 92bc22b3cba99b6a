package api

// csvCell neutralises a text cell of a CSV export that a spreadsheet would
// run as a formula (OWASP's CSV injection rule): one that begins with =, +,
// -, @, a tab or a carriage return gets a leading single quote, which
// spreadsheets show as text. Numbers the export writes itself (errcode,
// msgid) are not text cells and are left alone: -1 is a number.
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
