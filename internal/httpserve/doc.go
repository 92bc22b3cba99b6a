// Package httpserve is the HTTP server of `wxmass serve` and `wxmass all`:
// an http.Server with a deadline for every part of a request, limits on the
// connections a client may hold, and TLS whose certificate is reloaded when
// its files change.
//
// A request has, in turn:
//
//   - HeaderTimeout to send its headers (a TLS handshake included);
//   - BodyTimeout to send its body, counted from the start of its handler;
//     an upload (see Upload) gets longer while its data keeps arriving at
//     UploadMinRate or faster on average;
//   - HandlerTimeout to be handled: the request's context is cancelled with
//     ErrHandlerTimeout once the handler has made no progress for that
//     long; a streamed answer calls Progress as it goes, and an upload's
//     data counts as progress;
//   - as long again to have its answer taken by the client;
//   - and IdleTimeout between two requests of one connection.
//
// A handler that refuses a request before reading its body (401, 429) calls
// Refuse: the answer closes the connection, and what the client goes on
// sending is not waited for (net/http would otherwise read up to 256 KiB of
// it to reuse the connection).
//
// The listener closes at once a client address's connection over
// MaxConnsPerAddress (IPv6 clients count per /64, see AddressKey), and holds
// new connections in the kernel's backlog while MaxConns are open.
package httpserve
