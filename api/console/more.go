package console

// routesMore registers the pages of the other files.
func (c *Console) routesMore() {
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
