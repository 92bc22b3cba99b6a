package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Test send: GET and POST /console/campaigns/{id}/test sends the
// campaign's message to a few openids through POST /v1/campaigns/{id}/test,
// for real, and shows WeChat's answer for each.

// testData is the test send page.
type testData struct {
	C campaignRow
	// To and As are the form's values.
	To, As string
	// ToErr is the problem with the targets (any line of them).
	ToErr  string
	Answer *testAnswer
	Err    *opError
}

// testAnswer is the API's answer to a test send (api.testAnswer).
type testAnswer struct {
	As      string `json:"as"`
	Results []struct {
		To      string `json:"to"`
		WXName  string `json:"wxname"`
		OK      bool   `json:"ok"`
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Meaning string `json:"meaning"`
	} `json:"results"`
	OK       bool       `json:"ok"`
	TestedAt *time.Time `json:"tested_at"`
}

func (c *Console) testPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.testData(r, v)
	if err != nil {
		return err
	}
	return v.Render("testsend", d)
}

func (c *Console) testData(r *http.Request, v *view) (*testData, error) {
	cr, err := c.campaign(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v.Nav, v.Title = "campaigns", v.T("ops.test.title", cr.Name)
	v.loc = c.location(cr.Account)
	return &testData{C: cr}, nil
}

// testSend posts the form's targets to the API and shows each one's
// result.
func (c *Console) testSend(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.testData(r, v)
	if err != nil {
		return err
	}
	d.To, d.As = r.PostFormValue("to"), strings.TrimSpace(r.PostFormValue("as"))
	body := struct {
		To []string `json:"to"`
		As string   `json:"as,omitempty"`
	}{To: lines(d.To), As: d.As}
	a, err := c.call(r, http.MethodPost, apiPath(d.C.ID, "/test"), nil, body, "")
	if err != nil {
		if d.Err, err = c.opErrorOf(v, err); err != nil {
			return err
		}
		for f, msg := range d.Err.Fields {
			if f == "to" || strings.HasPrefix(f, "to[") {
				d.ToErr = targetError(v, f, msg)
			}
		}
		return v.Render("testsend", d)
	}
	d.Answer = &testAnswer{}
	if err := json.Unmarshal(a.Body, d.Answer); err != nil {
		return err
	}
	return v.Render("testsend", d)
}

// targetError is the problem with field (to or to[i]), naming the line of
// the form's list for to[i].
func targetError(v *view, field, msg string) string {
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(field, "to["), "]"))
	if err != nil {
		return msg
	}
	return v.T("ops.test.line_error", i+1, msg)
}

// lines are the non-blank lines of s, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
