package console

// routesMore registers the pages of the other files.
func (c *Console) routesMore() {
	c.mux.HandleFunc("GET /console/campaigns/new", c.page(c.newCampaignPage))
	c.mux.HandleFunc("POST /console/campaigns/new", c.form(c.saveNew))
	c.mux.HandleFunc("GET /console/campaigns/{id}/edit", c.page(c.editCampaignPage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/edit", c.form(c.saveEdit))
}
