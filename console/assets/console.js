// Plinth console: progressive enhancement only. Every form works without this file.
"use strict";

// Live catalog search: results update as you type, and the address follows the search.
function liveSearch() {
  const form = document.querySelector("form[data-live-search]");
  const results = document.getElementById("results");
  if (!form || !results) return;
  let timer = null;
  let latest = 0;
  const run = () => {
    const query = new URLSearchParams(new FormData(form));
    for (const [key, value] of [...query.entries()]) {
      if (value === "") query.delete(key);
    }
    const ticket = ++latest;
    fetch("/catalog/results?" + query.toString(), { credentials: "same-origin" })
      .then((response) => response.text())
      .then((html) => {
        if (ticket !== latest) return;
        results.innerHTML = html;
        const address = query.toString();
        history.replaceState(null, "", address ? "/?" + address : "/");
      })
      .catch(() => {});
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
}

// Selects marked data-autosubmit reload their form when changed (e.g. another version).
function autoSubmit() {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

// Forms marked data-confirm ask before they are sent.
function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

// Drag a package onto the drop zone to choose it.
function dropZone() {
  const zone = document.querySelector(".dropzone");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  const name = zone.querySelector(".chosen");
  const show = () => {
    if (name && input.files.length) name.textContent = "Chosen: " + input.files[0].name;
  };
  input.addEventListener("change", show);
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      show();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  liveSearch();
  autoSubmit();
  confirmations();
  dropZone();
});
