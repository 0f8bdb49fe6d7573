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
