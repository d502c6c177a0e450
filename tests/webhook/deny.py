"""A minimal validating admission webhook for the local-cluster test: denies every request.

Usage: deny.py HOST PORT CERT KEY MESSAGE. Serves HTTPS; answers each AdmissionReview with
allowed=false and MESSAGE, so a test can see that the API server reached it.
"""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

host, port, cert, key, message = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        uid = body.get("request", {}).get("uid", "")
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": False, "status": {"code": 403, "message": message}},
        }
        data = json.dumps(review).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = HTTPServer((host, port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
