package audit

import "io"

// Table writes one titled table in format f: the header and rows of s, with
// its chart in HTML and PDF, and s.Empty in a PDF without rows (the
// analytics reports). JSONL writes each row as an object keyed by the
// header.
func (e Exporter) Table(s Section, f Format, w io.Writer) error {
	rw, err := e.newRowWriter(f, w, s.Title, s.Header, s.Weights)
	if err != nil {
		return err
	}
	rw.chart = s.Chart
	for _, r := range s.Rows {
		if f == JSONL {
			m := make(map[string]string, len(r))
			for i, c := range r {
				if i < len(s.Header) {
					m[s.Header[i]] = c
				}
			}
			err = rw.json(m)
		} else {
			err = rw.row(r)
		}
		if err != nil {
			return err
		}
	}
	if len(s.Rows) == 0 && s.Empty != "" {
		rw.note(s.Empty)
	}
	return rw.close()
}
