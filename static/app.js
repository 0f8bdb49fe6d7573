// Send the CSRF token with every htmx request (Flask-WTF reads X-CSRFToken).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});

// Upload form: drop files onto the field, and refuse an oversized choice before sending it.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-max-bytes]");
  if (!form) return;
  var zone = form.querySelector(".dropzone");
  var input = zone.querySelector("input[type=file]");
  var message = zone.querySelector(".client-error");
  var limit = Number(form.dataset.maxBytes);

  function tooLarge() {
    var total = 0;
    for (var i = 0; i < input.files.length; i++) total += input.files[i].size;
    return total > limit;
  }
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change"));
  });
  input.addEventListener("change", function () {
    message.hidden = !tooLarge();
    message.textContent = tooLarge() ? "These files are larger than " + Math.round(limit / 1048576) + " MB together: split them." : "";
  });
  form.addEventListener("submit", function (event) {
    if (tooLarge()) { event.preventDefault(); message.hidden = false; }
  });
});

// Live updates: the htmx ws extension keeps a socket open on #live. When it
// cannot open or keeps failing, poll the same fragments every 2 s instead, and
// say so; when the socket comes back, stop polling.
(function () {
  var failures = 0;
  var poller = null;

  function banner(show) {
    var paused = document.getElementById("live-paused");
    if (paused) paused.hidden = !show;
  }
  function startPolling() {
    var live = document.getElementById("live");
    if (poller || !live) return;
    poller = document.createElement("div");
    poller.setAttribute("hx-get", live.dataset.pollUrl);
    poller.setAttribute("hx-trigger", "load, every 2s");
    poller.setAttribute("hx-swap", "none");
    live.after(poller);
    htmx.process(poller);
    banner(true);
  }
  function stopPolling() {
    failures = 0;
    if (poller) { poller.remove(); poller = null; }
    banner(false);
  }
  function failed() {
    failures += 1;
    if (failures >= 2) startPolling();
  }
  function closed(event) {
    // The ws extension reconnects only after these codes; after any other it gives up, so poll at once.
    var code = event.detail.event && event.detail.event.code;
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0) startPolling();
    else failed();
  }
  // A socket is working once it delivers: a server may accept it and close it straight away.
  document.addEventListener("htmx:wsAfterMessage", stopPolling);
  document.addEventListener("htmx:wsError", failed);
  document.addEventListener("htmx:wsClose", closed);
})();
