package console

// routesMore registers the pages of the other files.
func (c *Console) routesMore() {
}
