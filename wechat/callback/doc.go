// Package callback receives what WeChat pushes to an Official Account's
// callback URL (消息推送): it verifies the signature, decrypts safe-mode
// bodies, parses the XML push into an Event, drops WeChat's retries of a push
// already handled, and answers "success" within WeChat's five seconds.
//
// The facts it follows are in wechat-api.md §7 (signature, push format,
// retries, the AES "safe mode") and §2.6 (TEMPLATESENDJOBFINISH, the delivery
// receipt of a template message).
//
// # Pieces
//
//   - Signature computes WeChat's signatures: the lower-case hex SHA-1 of the
//     sorted, concatenated parts (token, timestamp, nonce, and the ciphertext
//     for msg_signature).
//   - Crypter decrypts and encrypts safe-mode bodies (AES-256-CBC, PKCS#7 to
//     32 bytes, random(16) | length(4) | message | appid), with an optional
//     previous EncodingAESKey for key rotation.
//   - ParseEvent decodes a plaintext XML push into an Event; receipts carry a
//     normalised Delivery and Reason next to WeChat's raw Status.
//   - Handler is the http.Handler of the callback URL, configured by Config.
//     Its Config.ClaimRequest records each request's timestamp, nonce and
//     signature with a digest of its body, so that a captured query sent
//     again with another body (the plaintext signature does not cover the
//     body) is refused while WeChat's retry of the same request is answered
//     as before; Config.RefusedFunc reports every refusal by one of the
//     fixed Refused reasons, and an OnEvent *DiscardError (a receipt from
//     another user than its message's recipient) is answered "success"
//     without effect.
//
// Only the XML push format is supported; an account configured for JSON
// pushes gets 400 answers.
package callback
