// The explorer: GraphiQL against this server, everything served by the
// server itself (no network beyond it). Queries and mutations go over HTTP;
// subscriptions over graphql-transport-ws. Put a token in the Headers tab as
// {"Authorization": "Bearer …"} (`itsm token` mints one); the WebSocket sends
// the same headers in its connection_init payload when it connects.
(function () {
  var http = location.origin + '/graphql';
  var ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  function headers() {
    try {
      return JSON.parse(localStorage.getItem('graphiql:headers') || '{}') || {};
    } catch (e) {
      return {};
    }
  }
  var wsClient = graphqlWs.createClient({ url: ws, lazy: true, connectionParams: headers });
  var fetcher = GraphiQL.createFetcher({ url: http, wsClient: wsClient });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: '{\n  "Authorization": "Bearer <a token from `itsm token`>"\n}',
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: true,
    }),
  );
})();
