// Retry and delete buttons on the jobs page. Requests carry X-Requested-With, which the
// admin rules require of every change (a cross-site form cannot send it).
"use strict";

async function act(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const status = document.getElementById("status");
  button.disabled = true;
  try {
    const response = await fetch(button.dataset.url, {
      method: button.dataset.method,
      headers: { "X-Requested-With": "dakiya-admin" },
      credentials: "same-origin",
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    window.location.reload();
  } catch (error) {
    status.textContent = `Failed: ${error.message}`;
    button.disabled = false;
  }
}

document.querySelectorAll("button[data-url]").forEach((button) => {
  button.addEventListener("click", () => act(button));
});
