// Starts hpl-lsp over stdio for .hpl files.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("hpl").get("server.path") || "hpl-lsp";
  const server = { command, transport: TransportKind.stdio };
  client = new LanguageClient("hpl", "hpl", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "hpl" }],
  });
  context.subscriptions.push(client);
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
