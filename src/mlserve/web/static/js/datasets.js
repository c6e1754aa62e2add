// Datasets: drag-and-drop upload with a progress bar (XHR reports upload progress,
// fetch does not), then the dataset's page; below, every dataset.
import { ApiError, csrfToken, getJson, seg, signInAgain } from "./lib/api.js";
import { byId, bytes, clearErrors, fill, h, number, showError, table, when } from "./lib/dom.js";

const form = byId("upload-form");
const fileInput = byId("file");
const nameInput = byId("name");
const dropzone = byId("dropzone");
const progress = byId("upload-progress");
const status = byId("upload-status");
const button = byId("upload-button");
let suggestedName = "";

function stem(filename) {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? filename.slice(0, dot) : filename;
}

function fileChosen() {
  const file = fileInput.files[0];
  if (!file) return;
  if (!nameInput.value || nameInput.value === suggestedName) {
    suggestedName = stem(file.name);
    nameInput.value = suggestedName;
  }
  status.textContent = `${file.name}, ${bytes(file.size)}`;
}

function errorOfXhr(xhr) {
  try {
    const { error } = JSON.parse(xhr.responseText);
    return new ApiError(xhr.status, error.code, error.message, error.details);
  } catch {
    return new ApiError(xhr.status, "http_error", `the server answered HTTP ${xhr.status}`, {});
  }
}

// POST the form as multipart; resolves to the created dataset.
function send(data) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/datasets");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      const percent = Math.round((100 * event.loaded) / event.total);
      progress.value = percent;
      status.textContent = percent < 100 ? `Uploading… ${percent} %` : "Checking the file…";
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) resolve(JSON.parse(xhr.responseText));
      else {
        if (xhr.status === 401) signInAgain();
        reject(errorOfXhr(xhr));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network_error", "the upload failed: the server cannot be reached", {})));
    xhr.send(data);
  });
}

async function upload(event) {
  event.preventDefault();
  clearErrors(form);
  const file = fileInput.files[0];
  if (!file) {
    showError(new ApiError(0, "", "Choose a CSV or Parquet file first.", { field: "file" }), byId("upload-error"));
    return;
  }
  const data = new FormData();
  data.append("file", file, file.name);
  if (nameInput.value.trim()) data.append("name", nameInput.value.trim());
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  try {
    const dataset = await send(data);
    status.textContent = "Uploaded.";
    window.location.assign(`/datasets/${seg(dataset.id)}`);
  } catch (error) {
    progress.hidden = true;
    status.textContent = "";
    showError(error, byId("upload-error"));
    button.disabled = false;
  }
}

function wireDropzone() {
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("over"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    fileInput.files = event.dataTransfer.files;
    fileChosen();
  });
}

async function showList() {
  const { datasets } = await getJson("/api/v1/datasets", { limit: 1000 });
  if (!datasets.length) {
    fill(byId("dataset-list"), h("p", { class: "muted" }, "No dataset yet: upload one above."));
    return;
  }
  const rows = datasets.map((dataset) => [
    h("a", { href: `/datasets/${seg(dataset.id)}` }, dataset.name),
    number(dataset.n_rows),
    number(dataset.n_columns),
    bytes(dataset.size_bytes),
    when(dataset.created_at),
  ]);
  fill(byId("dataset-list"), table(["Name", "Rows", "Columns", "Stored size", "Uploaded"], rows, { numeric: [1, 2, 3] }));
}

fileInput.addEventListener("change", fileChosen);
form.addEventListener("submit", upload);
wireDropzone();
showList().catch((error) => fill(byId("dataset-list"), h("p", { class: "error-text", role: "alert" }, error.message)));
