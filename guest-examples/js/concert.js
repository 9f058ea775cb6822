// The Locust example from the product card, as a k6 user would write it.
//
//   runner build guest-examples/js/concert.js
//   runner run guest-examples/js/concert.wasm --host http://127.0.0.1:8080 -u 10 -t 30s
import http from "k6/http";
import { sleep } from "k6";

export default function () {
  for (let i = 0; i < 3; i++) {
    http.get(`/concert/${i}`, { tags: { name: "/concert/<id>" }, responseCallback: http.expectedStatuses(200) });
  }
  sleep(1 + Math.random() * 2);
}
