// The sluice web page: uploads with progress (XMLHttpRequest, since fetch has no upload progress), each job
// followed live over server-sent events (read with fetch so that a bearer token can be sent), recent jobs.
// No framework, no build step: the gateway serves this file as it is.
"use strict";

(() => {
  const TOKEN_KEY = "sluice.token";
  const MAX_EVENT_RECONNECTS = 5;
  const RECENT_LIMIT = 10;

  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const drop = $("drop");
  const picker = $("files");
  const notify = $("notify");
  const variantBox = $("variants");
  const variantStatus = $("variants-status");
  const message = $("message");
  const uploads = $("uploads");
  const uploadsEmpty = $("uploads-empty");
  const jobsList = $("jobs");
  const jobsStatus = $("jobs-status");
  const detail = $("job-detail");
  const tokenBox = $("token-box");
  const tokenForm = $("token-form");
  const tokenInput = $("token");

  // ---------------------------------------------------------------------------------------------------
  // Small helpers

  /** Creates an element with a class and text; children may follow. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatBytes(bytes) {
    if (!Number.isFinite(bytes)) return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  /** The message of an error body `{"error":{"code","message"}}`, or a fallback. */
  function errorText(body, status) {
    if (body && body.error && typeof body.error.message === "string") {
      return { code: String(body.error.code || "error"), message: body.error.message };
    }
    return { code: `http_${status}`, message: `the server answered HTTP ${status}` };
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (_) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // The API token (only when the server asks for one), kept for this tab's session

  let waitingForToken = [];

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function authHeaders() {
    const value = token();
    return value ? { Authorization: `Bearer ${value}` } : {};
  }

  /** Shows the token prompt; `retry` runs once a token was given. */
  function askForToken(retry) {
    if (retry) waitingForToken.push(retry);
    if (!tokenBox.hidden) return;
    tokenBox.hidden = false;
    say(token() ? "The token was refused; enter another one." : "This server asks for an API token.", true);
    tokenInput.focus();
  }

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    tokenInput.value = "";
    tokenBox.hidden = true;
    say("Token set for this session.");
    const pending = waitingForToken;
    waitingForToken = [];
    pending.forEach((retry) => retry());
  });

  /** fetch with the token; a 401 asks for the token and retries the call once it is given. */
  async function api(path, options = {}) {
    const response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
    });
    if (response.status === 401) {
      return new Promise((resolve, reject) => {
        askForToken(() => api(path, options).then(resolve, reject));
      });
    }
    return response;
  }

  async function apiJson(path) {
    const response = await api(path);
    const body = parseJson(await response.text());
    if (!response.ok) {
      const problem = errorText(body, response.status);
      throw new Error(`${problem.message} (${problem.code})`);
    }
    return body;
  }

  // ---------------------------------------------------------------------------------------------------
  // Variants: the configured ones, all chosen by default

  let variantNames = [];

  async function loadVariants() {
    try {
      const body = await apiJson("/v1/variants");
      variantNames = (body.variants || []).map((variant) => variant.name);
      variantBox.querySelectorAll(".variant").forEach((node) => node.remove());
      for (const variant of body.variants || []) {
        const id = `variant-${variant.name}`;
        const wrap = el("div", "variant");
        const box = el("input");
        box.type = "checkbox";
        box.id = id;
        box.value = variant.name;
        box.checked = true;
        const label = el("label", "", `${variant.name} `);
        label.htmlFor = id;
        label.append(el("span", "hint", `${variant.width}×${variant.height} ${variant.fit}, ${variant.format}`));
        wrap.append(box, label);
        variantBox.append(wrap);
      }
      variantStatus.textContent = variantNames.length ? "" : "No variants are configured.";
      variantStatus.hidden = variantNames.length > 0;
    } catch (error) {
      variantStatus.textContent = `Could not load the variants: ${error.message}`;
    }
  }

  function chosenVariants() {
    return Array.from(variantBox.querySelectorAll("input[type=checkbox]:checked"), (box) => box.value);
  }

  // ---------------------------------------------------------------------------------------------------
  // Rendering a job's files: state, reason, thumbnails, links

  const STATE_TEXT = {
    uploading: "uploading",
    queued: "queued",
    running: "converting",
    pending: "waiting",
    converted: "converted",
    rejected: "rejected",
    completed: "completed",
    failed: "failed",
    refused: "refused",
  };

  function badge(state) {
    const node = el("span", `badge state-${state}`, STATE_TEXT[state] || state);
    node.dataset.state = state;
    return node;
  }

  /** The outputs of a file: one thumbnail (the smallest image), then a link to every output. */
  function renderOutputs(outputs) {
    const box = el("div", "outputs");
    const images = outputs.filter((output) => /^image\//.test(output.content_type || "") && output.width > 0);
    if (images.length) {
      const smallest = images.reduce((a, b) => (b.width * b.height < a.width * a.height ? b : a));
      const link = el("a", "thumb-link");
      link.href = smallest.url;
      const img = el("img", "thumb");
      img.src = smallest.url;
      img.alt = `${smallest.name} variant`;
      img.loading = "lazy";
      img.decoding = "async";
      link.append(img);
      box.append(link);
    }
    const list = el("ul", "links");
    for (const output of outputs) {
      const item = el("li");
      const link = el("a", "", output.name);
      link.href = output.url;
      const facts = [output.content_type];
      if (output.width > 0 && output.height > 0) facts.push(`${output.width}×${output.height}`);
      if (Number.isFinite(output.bytes)) facts.push(formatBytes(output.bytes));
      item.append(link, el("span", "hint", ` ${facts.filter(Boolean).join(", ")}`));
      list.append(item);
    }
    if (outputs.length) box.append(list);
    return box;
  }

  /** Fills a file's row from its entry in a job document. */
  function renderFileResult(row, file) {
    row.status.replaceChildren(badge(file.state));
    row.reason.textContent = file.error ? `${file.error.message} (${file.error.code})` : "";
    row.reason.hidden = !file.error;
    const outputs = Array.isArray(file.outputs) ? file.outputs : [];
    const signature = outputs.map((output) => output.url).join("\n");
    if (row.outputsSignature !== signature) {
      row.outputsSignature = signature;
      row.outputs.replaceChildren(renderOutputs(outputs));
    }
  }

  /** The row of one file: name, size, progress bar, state, reason, outputs. */
  function fileRow(name, bytes) {
    const item = el("li", "file");
    const head = el("div", "file-head");
    const title = el("span", "file-name", name);
    const size = el("span", "hint", formatBytes(bytes));
    const status = el("span", "file-state");
    head.append(title, size, status);
    const progress = el("progress", "bar");
    progress.max = Math.max(bytes, 1);
    progress.value = 0;
    progress.setAttribute("aria-label", `upload of ${name}`);
    const reason = el("p", "reason");
    reason.hidden = true;
    const outputs = el("div");
    item.append(head, progress, reason, outputs);
    return { item, status, progress, reason, outputs, outputsSignature: null };
  }

  function renderJobDetail(job) {
    detail.replaceChildren();
    const head = el("div", "row between");
    head.append(el("h3", "", `Job ${job.id}`), badge(job.state));
    detail.append(head);
    detail.append(el("p", "hint", `${formatTime(job.created_at)} · variants: ${(job.variants || []).join(", ")}`));
    if (job.error) detail.append(el("p", "reason", `${job.error.message} (${job.error.code})`));
    const list = el("ol", "files");
    for (const file of job.files || []) {
      const row = fileRow(file.name, file.bytes);
      row.progress.remove();
      renderFileResult(row, file);
      list.append(row.item);
    }
    detail.append(list);
    detail.hidden = false;
    detail.focus();
  }

  // ---------------------------------------------------------------------------------------------------
  // Following a job: server-sent events read with fetch, reconnecting a bounded number of times

  const TERMINAL = new Set(["completed", "failed"]);

  /** Calls `onJob` with each job document of the stream until the job is settled. */
  async function followJob(eventsUrl, onJob) {
    let last = null;
    for (let attempt = 0; attempt <= MAX_EVENT_RECONNECTS; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(8000, 500 * 2 ** attempt)));
      try {
        const response = await api(eventsUrl, { headers: { Accept: "text/event-stream" } });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).replace(/^ /, ""))
              .join("\n");
            const job = data ? parseJson(data) : null;
            if (job && job.id) {
              last = job;
              onJob(job);
            }
          }
        }
        // The server ends the stream when nothing more will happen to the job.
        if (last && TERMINAL.has(last.state)) return last;
      } catch (_) {
        // A dropped connection: try again below, a bounded number of times.
      }
    }
    throw new Error("lost the connection to the job's events");
  }

  // ---------------------------------------------------------------------------------------------------
  // Uploads: one request per drop or choice, each file's bar fed from the bytes sent

  let uploadCount = 0;

  function startUpload(files) {
    if (!files.length) return;
    const variants = chosenVariants();
    if (variantNames.length && !variants.length) {
      say("Choose at least one variant.", true);
      return;
    }
    uploadCount += 1;
    const number = uploadCount;
    uploadsEmpty.hidden = true;
    const card = el("li", "card upload");
    card.dataset.upload = String(number);
    const head = el("div", "row between");
    const title = el("h3", "", `Upload ${number}`);
    const state = el("span", "job-state");
    state.append(badge("uploading"));
    head.append(title, state);
    const info = el("p", "hint");
    const problem = el("p", "reason");
    problem.hidden = true;
    const list = el("ol", "files");
    const rows = [];
    let offset = 0;
    for (const file of files) {
      const row = fileRow(file.name, file.size);
      row.status.replaceChildren(badge("uploading"));
      row.offset = offset;
      row.size = file.size;
      offset += file.size;
      rows.push(row);
      list.append(row.item);
    }
    card.append(head, info, problem, list);
    uploads.prepend(card);

    const body = new FormData();
    for (const file of files) body.append("file", file, file.name);
    if (notify.value.trim()) body.append("notify", notify.value.trim());
    if (variantNames.length && variants.length < variantNames.length) body.append("variants", variants.join(","));

    const send = () => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/uploads");
      xhr.setRequestHeader("Accept", "application/json");
      const auth = authHeaders();
      if (auth.Authorization) xhr.setRequestHeader("Authorization", auth.Authorization);
      xhr.upload.onprogress = (event) => {
        // Parts are sent in order, so each file's share of the bytes sent follows from its offset.
        const sent = event.loaded * (offset / Math.max(event.total || offset, 1));
        for (const row of rows) row.progress.value = Math.min(row.size, Math.max(0, sent - row.offset));
      };
      xhr.onerror = () => fail("network_error", "the upload could not reach the server");
      xhr.onabort = () => fail("aborted", "the upload was interrupted");
      xhr.onload = () => {
        const answer = parseJson(xhr.responseText);
        if (xhr.status === 401) {
          state.replaceChildren(badge("queued"));
          info.textContent = "Waiting for the API token…";
          askForToken(send);
          return;
        }
        if (xhr.status !== 202 && xhr.status !== 200) {
          const { code, message: text } = errorText(answer, xhr.status);
          fail(code, text);
          return;
        }
        for (const row of rows) row.progress.value = row.size;
        accepted(answer);
      };
      xhr.send(body);
    };

    const fail = (code, text) => {
      state.replaceChildren(badge("refused"));
      problem.textContent = `${text} (${code})`;
      problem.hidden = false;
      for (const row of rows) row.status.replaceChildren(badge("refused"));
      say(`Upload ${number} was refused: ${text}`, true);
    };

    const showJob = (job) => {
      state.replaceChildren(badge(job.state));
      info.textContent = `Job ${job.id}`;
      if (job.error) {
        problem.textContent = `${job.error.message} (${job.error.code})`;
        problem.hidden = false;
      }
      for (const file of job.files || []) {
        if (rows[file.index]) renderFileResult(rows[file.index], file);
      }
    };

    const accepted = (job) => {
      card.dataset.job = job.id;
      showJob(job);
      loadJobs();
      followJob(job.links.events, showJob)
        .then(() => loadJobs())
        .catch((error) => {
          problem.textContent = `${error.message}; the recent jobs list has its latest state.`;
          problem.hidden = false;
        });
    };

    send();
  }

  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    startUpload(Array.from(event.dataTransfer ? event.dataTransfer.files : []));
  });
  picker.addEventListener("change", () => {
    startUpload(Array.from(picker.files || []));
    picker.value = "";
  });
  form.addEventListener("submit", (event) => event.preventDefault());

  // ---------------------------------------------------------------------------------------------------
  // Recent jobs

  let loadingJobs = null;

  function loadJobs() {
    if (loadingJobs) return loadingJobs;
    loadingJobs = (async () => {
      try {
        const body = await apiJson(`/v1/jobs?limit=${RECENT_LIMIT}`);
        jobsList.replaceChildren();
        for (const job of body.jobs || []) {
          const item = el("li");
          const button = el("button", "job");
          button.type = "button";
          button.dataset.job = job.id;
          const names = (job.files || []).map((file) => file.name).join(", ");
          button.append(el("span", "job-name", names || job.id), badge(job.state));
          button.append(el("span", "hint", formatTime(job.created_at)));
          button.addEventListener("click", () => openJob(job.id));
          item.append(button);
          jobsList.append(item);
        }
        jobsStatus.textContent = (body.jobs || []).length ? "" : "No jobs yet.";
      } catch (error) {
        jobsStatus.textContent = `Could not load the recent jobs: ${error.message}`;
      } finally {
        loadingJobs = null;
      }
    })();
    return loadingJobs;
  }

  async function openJob(id) {
    try {
      renderJobDetail(await apiJson(`/v1/jobs/${encodeURIComponent(id)}`));
    } catch (error) {
      jobsStatus.textContent = `Could not open job ${id}: ${error.message}`;
    }
  }

  $("refresh").addEventListener("click", () => loadJobs());

  loadVariants();
  loadJobs();
})();
