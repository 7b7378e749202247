// The explorer: GraphiQL against this server, everything served by the
// server itself (no network beyond it). Queries and mutations go over HTTP;
// subscriptions over graphql-transport-ws. Put a token in the Headers tab as
// {"Authorization": "Bearer …"} (`itsm token` mints one); the WebSocket sends
// the same headers in its connection_init payload when it connects.
(function () {
  var http = location.origin + '/graphql';
  var ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  var PLACEHOLDER = 'Bearer <a token from `itsm token`>';

  // The headers of the operation being run, as the Headers tab holds them,
  // less the placeholder: an unedited tab sends no Authorization at all.
  var current = {};
  function clean(headers) {
    var out = {};
    Object.keys(headers || {}).forEach(function (name) {
      var value = headers[name];
      if (typeof value === 'string' && value.indexOf('<') === -1) out[name] = value;
    });
    return out;
  }

  // Lazy: the socket opens for the first subscription and closes after the
  // last, so a subscription run after the headers changed connects with them.
  var wsClient = graphqlWs.createClient({
    url: ws,
    lazy: true,
    connectionParams: function () {
      return current;
    },
  });
  var inner = GraphiQL.createFetcher({ url: http, wsClient: wsClient });
  function fetcher(params, opts) {
    var headers = clean(opts && opts.headers);
    if (JSON.stringify(headers) !== JSON.stringify(current)) {
      current = headers;
      // A socket opened with other headers must not serve this operation.
      wsClient.terminate();
    }
    return inner(params, Object.assign({}, opts, { headers: headers }));
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: '{\n  "Authorization": "' + PLACEHOLDER + '"\n}',
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: true,
    }),
  );
})();
