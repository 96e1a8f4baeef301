import http.server, socketserver, time, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0)); self.rfile.read(n)
        if self.path.startswith('/slow'):
            time.sleep(3)
        if self.path.startswith('/forbidden'):
            body = b'Forbidden (user=system:anonymous, verb=get, resource=inferenceservices, subresource=)\n'
            self.send_response(403)
        elif self.path.startswith('/crash'):
            self.close_connection = True
            self.wfile.flush(); self.connection.shutdown(2); return
        else:
            body = b'{"choices":[{"text":"hello"}]}'
            self.send_response(200)
        self.send_header('Content-Type','application/json'); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(('127.0.0.7', 8443), H).serve_forever()
