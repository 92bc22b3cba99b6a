package console

// routesMore registers the pages of the other files.
func (c *Console) routesMore() {
	c.mux.HandleFunc("GET /console/campaigns/{id}/audience", c.page(c.audiencePage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/audience", c.page(c.audienceUpload))
	c.mux.HandleFunc("GET /console/campaigns/{id}/test", c.page(c.testPage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/test", c.form(c.testSend))
	c.mux.HandleFunc("GET /console/campaigns/{id}/schedule", c.page(c.schedulePage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/schedule", c.form(c.scheduleSubmit))
	c.mux.HandleFunc("GET /console/campaigns/{id}/runs/{run}/retry", c.page(c.retryPage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/runs/{run}/retry", c.form(c.retrySubmit))
	c.mux.HandleFunc("GET /console/campaigns/new", c.page(c.newCampaignPage))
	c.mux.HandleFunc("POST /console/campaigns/new", c.form(c.saveNew))
	c.mux.HandleFunc("GET /console/campaigns/{id}/edit", c.page(c.editCampaignPage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/edit", c.form(c.saveEdit))
	c.mux.HandleFunc("GET /console/dashboard/live", c.dashLive)
	c.mux.HandleFunc("GET /console/accounts", c.page(c.accountsPage))
	c.mux.HandleFunc("GET /console/accounts/{account}/suppressions", c.page(c.suppressionsPage))
	c.mux.HandleFunc("POST /console/accounts/{account}/suppressions", c.form(c.supAdd))
	c.mux.HandleFunc("POST /console/accounts/{account}/suppressions/import", c.page(c.supImportForm))
	c.mux.HandleFunc("GET /console/accounts/{account}/suppressions/{openid}/remove", c.page(c.supConfirmRemove))
	c.mux.HandleFunc("POST /console/accounts/{account}/suppressions/{openid}/remove", c.form(c.supRemove))
	c.mux.HandleFunc("GET /console/accounts/{account}/events", c.page(c.accountEvents))
	c.mux.HandleFunc("GET /console/campaigns/{id}/events", c.page(c.campaignEvents))
}
