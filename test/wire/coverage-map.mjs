// tap coverage-map for the 100% gate on the pure wire parsers (.ci/run runs it separately):
// each test/wire file answers for its parser; any other test covers nothing here.
const SOURCES = {
  'byte-reader': ['lib/wire/byte-reader.ts'],
  'tls-record': ['lib/wire/tls/record.ts'],
  'tls-client-hello': ['lib/wire/tls/client-hello.ts', 'lib/wire/parse.ts'],
  'tls-client-hello-stacks': ['lib/wire/tls/client-hello.ts'],
  'tls-server-hello': ['lib/wire/tls/server-hello.ts'],
  'tls-session-der': ['lib/wire/tls/session-der.ts'],
  'http-request-head': ['lib/wire/http/request-head.ts', 'lib/wire/parse.ts'],
  'http-response-head': ['lib/wire/http/response-head.ts'],
  'xmpp-stream-open': ['lib/wire/xmpp/stream-open.ts'],
  'imap-command': ['lib/wire/imap/command.ts'],
  'pop3-command': ['lib/wire/pop3/command.ts'],
  'sasl-plain': ['lib/wire/sasl/plain.ts'],
  'proxy-header': ['lib/wire/proxy/header.ts'],
};
export default (testFile) => {
  const m = /^test[/\\]wire[/\\](.+)\.test\.ts$/.exec(testFile);
  return (m && SOURCES[m[1]]) ?? null;
};
