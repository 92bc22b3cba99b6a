// Package campaigns holds the Campaign: what message an Official Account
// sends, to whom, how fast, and where it is in its life.
//
// A Campaign is plain data, stored as JSON and sent over the HTTP API. Its
// message is one of three kinds: a template message ([TemplateSpec]), a
// customer-service message ([CustomSpec]) or a subscribe notification
// ([SubscribeSpec]). Its audience ([AudienceSpec]) is an inline openid
// list, an uploaded CSV or JSONL file with per-recipient variables, all
// followers, or the members of a tag. Its [State] moves through the
// transitions [State.CanTransition] allows.
//
// The life of a campaign's message in this package:
//
//  1. [Campaign.Validate] checks everything that can be checked before a
//     send, including the template data against WeChat's keyword rules
//     ([CheckKeywordValue]) and the variables the message uses against
//     those the audience provides. Every problem is a [FieldError] naming
//     the field by its JSON path.
//  2. An uploaded audience file is read by an [AudienceReader], which
//     streams [Recipient] values and counts blank, duplicate and invalid
//     lines in a [Report] with a [LineError] per problem line. Pass
//     [Message.CheckRecipient] as [AudienceOptions].Check so that a value
//     WeChat would refuse is found at upload, not at send.
//  3. Workers call [Campaign.Compile] once per campaign and render each
//     recipient's message with [Message.RenderTemplate],
//     [Message.RenderCustom] or [Message.RenderSubscribe], which build the
//     wechat package's request bodies.
//
// Message text may refer to per-recipient variables as {{.name}}, using Go's
// text/template syntax but nothing else from it: no functions, pipelines,
// conditionals, loops or nested fields. Rendering substitutes the values as
// they are (JSON encoding is the client's job) and fails on a missing
// variable rather than sending a blank.
//
// The types, validation, rendering and the audience reader do no I/O
// beyond the io.Reader they are given; the Redis-backed [Store] builds on
// them. The Store is the one door to what is kept in Redis about campaigns:
// their documents and audiences, schedules, runs, and the ledger of each
// run (ledger.go): every recipient's attempts, recorded before each WeChat
// call ([Store.BeginAttempt]), and its one final outcome ([Store.Record]):
// sent, delivered, failed, unknown (an answer was lost: WeChat may have
// delivered it), skipped or cancelled (both: certainly never sent). A
// stopped run ([Store.Stop]) is stopping until [Store.SettleStopped] and the
// sends still coming have given every recipient its outcome by one rule;
// only then is it failed or cancelled. Delivery receipts
// ([Store.Reconcile]) move sent outcomes to delivered or failed.
package campaigns
