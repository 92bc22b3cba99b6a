package console

import (
	"net/http"
	"net/url"
)

// The campaign operations besides the confirmed actions of campaigns.go:
// audience upload (audience.go), test send (testsend.go), schedule
// (schedule.go) and retry of a run's failed recipients (retry.go). Each is
// a form page whose post goes to the API, and which shows the API's answer
// or refusal on the page itself.

// opError is an API refusal shown on an operation's page: the translation
// of its code, the API's own words, and the problems of single fields.
type opError struct {
	// Text is the translated code.
	Text string
	// Detail is the API's message.
	Detail string
	// Fields are the API's messages by field ("to[0]", "schedule.cron").
	Fields map[string]string
}

// opErrorOf returns err as an opError when it is an API refusal (4xx), and
// nil with err otherwise, for the page's error page.
func (c *Console) opErrorOf(v *view, err error) (*opError, error) {
	ae, ok := asAPIError(err)
	if !ok || ae.Status >= 500 {
		return nil, err
	}
	e := &opError{Text: c.apiErrorText(v, ae), Detail: ae.Message, Fields: map[string]string{}}
	if ae.Field != "" {
		e.Fields[ae.Field] = ae.Message
	}
	for _, fe := range ae.Errors {
		e.Fields[fe.Field] = fe.Message
	}
	return e, nil
}

// campaign reads the campaign id through the API.
func (c *Console) campaign(r *http.Request, id string) (campaignRow, error) {
	var cr campaignRow
	err := c.get(r, "/v1/campaigns/"+url.PathEscape(id), nil, &cr)
	return cr, err
}

// campaignPath is the console's page of campaign id.
func campaignPath(id string) string { return "/console/campaigns/" + url.PathEscape(id) }

// apiPath is the API's path of campaign id, with rest after it.
func apiPath(id, rest string) string { return "/v1/campaigns/" + url.PathEscape(id) + rest }
