package wechat

// The API names used in APIError.API, TransportError.API, metrics and the
// fake server's statistics. Each is the endpoint's path below /cgi-bin/.
const (
	APIStableToken  = "stable_token"
	APIToken        = "token"
	APITemplateSend = "message/template/send"
	APICustomSend   = "message/custom/send"
	APIBizSend      = "message/subscribe/bizsend"
	APIUserGet      = "user/get"
	APITagGet       = "user/tag/get"
	APIQuotaGet     = "openapi/quota/get"
	APICallbackIP   = "getcallbackip"
)

// TemplateMessage is the body of message/template/send.
//
// Data maps each template keyword (such as "thing1") to its value. Colour
// fields are omitted: WeChat has ignored them since 2023-05-04.
type TemplateMessage struct {
	ToUser      string                   `json:"touser"`
	TemplateID  string                   `json:"template_id"`
	URL         string                   `json:"url,omitempty"`
	MiniProgram *MiniProgram             `json:"miniprogram,omitempty"`
	ClientMsgID string                   `json:"client_msg_id,omitempty"`
	Data        map[string]TemplateValue `json:"data"`
}

// TemplateValue is one keyword's value in template and subscribe data.
type TemplateValue struct {
	Value string `json:"value"`
}

// MiniProgram is the mini program a message jumps to.
type MiniProgram struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath,omitempty"`
}

// SubscribeMessage is the body of message/subscribe/bizsend.
type SubscribeMessage struct {
	ToUser      string                   `json:"touser"`
	TemplateID  string                   `json:"template_id"`
	Page        string                   `json:"page,omitempty"`
	MiniProgram *MiniProgram             `json:"miniprogram,omitempty"`
	Data        map[string]TemplateValue `json:"data"`
}

// Customer-service message types (the msgtype field).
const (
	MsgTypeText            = "text"
	MsgTypeImage           = "image"
	MsgTypeNews            = "news"
	MsgTypeMPNews          = "mpnews"
	MsgTypeMPNewsArticle   = "mpnewsarticle"
	MsgTypeMiniProgramPage = "miniprogrampage"
	MsgTypeMenu            = "msgmenu"
)

// CustomMessage is the body of message/custom/send. MsgType names the one
// payload field that must be set; Validate checks that exactly that payload
// is present.
type CustomMessage struct {
	ToUser          string               `json:"touser"`
	MsgType         string               `json:"msgtype"`
	Text            *Text                `json:"text,omitempty"`
	Image           *Media               `json:"image,omitempty"`
	News            *News                `json:"news,omitempty"`
	MPNews          *Media               `json:"mpnews,omitempty"`
	MPNewsArticle   *MPNewsArticle       `json:"mpnewsarticle,omitempty"`
	MiniProgramPage *MiniProgramPage     `json:"miniprogrampage,omitempty"`
	MsgMenu         *MsgMenu             `json:"msgmenu,omitempty"`
	CustomService   *CustomServiceSender `json:"customservice,omitempty"`
}

// Text is a text payload. Content may hold newlines and <a href> links.
type Text struct {
	Content string `json:"content"`
}

// Media names an uploaded media item (image, mpnews).
type Media struct {
	MediaID string `json:"media_id"`
}

// News is a link card. WeChat accepts exactly one article since 2018.
type News struct {
	Articles []Article `json:"articles"`
}

// Article is one entry of News.
type Article struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url"`
	PicURL      string `json:"picurl,omitempty"`
}

// MPNewsArticle is a published article by its article_id.
type MPNewsArticle struct {
	ArticleID string `json:"article_id"`
}

// MiniProgramPage is a mini program card.
type MiniProgramPage struct {
	Title        string `json:"title"`
	AppID        string `json:"appid"`
	PagePath     string `json:"pagepath"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// MsgMenu is a message with a menu of choices the user can tap.
type MsgMenu struct {
	HeadContent string        `json:"head_content"`
	List        []MsgMenuItem `json:"list"`
	TailContent string        `json:"tail_content"`
}

// MsgMenuItem is one choice of a MsgMenu.
type MsgMenuItem struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

// CustomServiceSender sends the message as a named customer-service account.
type CustomServiceSender struct {
	KFAccount string `json:"kf_account"`
}

// Quota is the answer of openapi/quota/get for one API path.
type Quota struct {
	DailyLimit int64 `json:"daily_limit"`
	Used       int64 `json:"used"`
	Remain     int64 `json:"remain"`
}

// RateLimit is a call allowance of CallCount calls per RefreshSecond seconds.
type RateLimit struct {
	CallCount     int64 `json:"call_count"`
	RefreshSecond int64 `json:"refresh_second"`
}

// QuotaInfo is the whole answer of openapi/quota/get.
type QuotaInfo struct {
	Quota              Quota     `json:"quota"`
	RateLimit          RateLimit `json:"rate_limit"`
	ComponentRateLimit RateLimit `json:"component_rate_limit"`
}

// FollowerPage is one page of user/get or user/tag/get.
type FollowerPage struct {
	Total      int64    // user/get only: all followers of the account
	OpenIDs    []string // this page's openids
	NextOpenID string   // pass to the next call; "" or a final empty page ends the list
}
