// Live preview of the masking rules: re-masks the sample as it is typed, through the same
// form endpoint the Preview button posts to. Without script, the button does the same.
(function () {
  "use strict";
  const form = document.getElementById("masking-preview");
  if (!form) return;
  const text = form.elements.namedItem("text");
  const output = form.querySelector("output pre");
  const counts = form.querySelector(".counts");
  let timer = null;
  let latest = 0;
  async function update() {
    const ticket = ++latest;
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json" },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    });
    if (!response.ok || ticket !== latest) return;
    const preview = await response.json();
    output.textContent = preview.text;
    counts.textContent = preview.summary;
  }
  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(update, 250);
  });
})();
