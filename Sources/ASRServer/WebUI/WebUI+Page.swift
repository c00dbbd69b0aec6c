// The browser page's markup, style sheet and icon, compiled into the binary (see Routes/WebUIRoutes.swift).
// No inline script or style: the Content-Security-Policy forbids both.

extension WebUI {
    /// The page served at `/` and `/ui`.
    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>Vani · try speech recognition</title>
        <link rel="icon" href="/ui/icon.svg" type="image/svg+xml">
        <link rel="stylesheet" href="/ui/app.css">
        <script src="/ui/app.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#result-title">Skip to the transcript</a>
        <header class="top">
          <div class="brand">
            <img src="/ui/icon.svg" alt="" width="32" height="32">
            <h1>Vani</h1>
          </div>
          <p class="tagline">Speech recognition for Indian languages, on this server.</p>
          <p id="server" class="server">Connecting to the service…</p>
          <p id="key-state" class="key-state" hidden>
            <span>API key set for this tab.</span>
            <button type="button" id="forget-key" class="link">Forget key</button>
          </p>
        </header>

        <main>
          <section class="card" aria-labelledby="settings-title">
            <h2 id="settings-title">Settings</h2>
            <div class="fields">
              <div class="field">
                <label for="language">Language</label>
                <select id="language"></select>
              </div>
              <div class="field">
                <label for="decoder">Decoder</label>
                <select id="decoder"></select>
              </div>
            </div>
            <p id="language-note" class="note" hidden></p>
          </section>

          <section class="card" aria-labelledby="audio-title">
            <h2 id="audio-title">Audio</h2>
            <div id="drop" class="drop">
              <input type="file" id="file" class="visually-hidden" tabindex="-1"
                     accept="audio/*,.wav,.flac,.ogg,.oga,.opus,.mp3">
              <button type="button" id="choose" class="primary">Choose an audio file</button>
              <p class="drop-hint">or drop one here · WAV, FLAC, OGG, Opus, MP3</p>
            </div>
            <div class="record">
              <button type="button" id="record" aria-pressed="false">
                <span class="dot" aria-hidden="true"></span><span id="record-label">Record</span>
              </button>
              <span id="record-time" class="record-time" aria-hidden="true">0:00</span>
              <meter id="level" min="0" max="1" low="0.6" high="0.9" optimum="0.3" value="0"
                     aria-label="Microphone level"></meter>
            </div>
            <p id="mic-note" class="note" hidden></p>
            <div id="live" class="live" hidden>
              <h3>Live</h3>
              <p id="live-note"></p>
            </div>
          </section>

          <section class="card" aria-labelledby="result-title" id="result">
            <h2 id="result-title" tabindex="-1">Transcript</h2>
            <p id="status" class="status" role="status">Choose a file or record to begin.</p>
            <div id="error" class="error" role="alert" hidden></div>
            <audio id="player" controls preload="metadata" hidden></audio>
            <div id="transcript" class="transcript" dir="auto" aria-live="polite"
                 aria-label="Transcript: each word is a button that plays the audio from there"></div>
            <details id="timings" class="timings" hidden>
              <summary>Word timings</summary>
              <div class="table-wrap">
                <table>
                  <thead><tr><th scope="col">#</th><th scope="col">Word</th><th scope="col">Start (s)</th><th scope="col">End (s)</th></tr></thead>
                  <tbody id="timings-body"></tbody>
                </table>
              </div>
            </details>
            <dl id="stats" class="stats" hidden>
              <div><dt>Audio</dt><dd id="stat-duration"></dd></div>
              <div><dt>Processing</dt><dd id="stat-processing"></dd></div>
              <div><dt>Real-time factor</dt><dd id="stat-rtf"></dd></div>
              <div><dt>Round trip</dt><dd id="stat-roundtrip"></dd></div>
            </dl>
            <div id="downloads" class="downloads" hidden>
              <span class="downloads-title">Download</span>
              <button type="button" data-format="srt">SRT</button>
              <button type="button" data-format="vtt">WebVTT</button>
              <button type="button" data-format="json">JSON</button>
            </div>
          </section>
        </main>

        <footer class="foot">
          <p>Audio goes only to this server (<code>POST /asr</code> with word timestamps); subtitles are
          built in the page from those words. Tab through the words and press Enter to play from one;
          in the transcript, the arrow keys move between words.</p>
        </footer>

        <dialog id="key-dialog" aria-labelledby="key-title">
          <form id="key-form" method="dialog">
            <h2 id="key-title">API key needed</h2>
            <p id="key-message" class="note"></p>
            <label for="key-input">API key</label>
            <input id="key-input" type="password" autocomplete="off" spellcheck="false" required>
            <p class="note">Kept in this tab only (sessionStorage) and sent as
              <code>Authorization: Bearer</code>.</p>
            <div class="dialog-buttons">
              <button type="submit" class="primary" id="key-submit">Use key</button>
              <button type="button" id="key-cancel">Cancel</button>
            </div>
          </form>
        </dialog>
        </body>
        </html>

        """#

    /// The page's style sheet (`/ui/app.css`): system fonts with Noto for every Indic script,
    /// light and dark, one column at phone width.
    static let styleSheet = #"""
        :root {
          --bg: #f6f7f9; --card: #ffffff; --text: #1b1f24; --muted: #5b6470; --line: #d9dde3;
          --accent: #0b6e4f; --accent-text: #ffffff; --focus: #1a5fd0; --error-bg: #fdecec;
          --error-text: #8a1111; --mark: #ffe58a; --mark-text: #1b1f24;
          --font: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Devanagari",
            "Noto Sans Bengali", "Noto Sans Tamil", "Noto Sans Telugu", "Noto Sans Kannada",
            "Noto Sans Malayalam", "Noto Sans Gujarati", "Noto Sans Gurmukhi", "Noto Sans Oriya",
            "Noto Sans Ol Chiki", "Noto Sans Meetei Mayek", "Noto Naskh Arabic", "Noto Nastaliq Urdu",
            "Nirmala UI", "Kohinoor Devanagari", "Mangal", "Vrinda", "Latha", "Lohit Devanagari",
            sans-serif;
          color-scheme: light dark;
        }
        @media (prefers-color-scheme: dark) {
          :root {
            --bg: #12151a; --card: #1b2027; --text: #e8ebef; --muted: #a3acb8; --line: #343b45;
            --accent: #3fbf8f; --accent-text: #08130e; --focus: #8ab4ff; --error-bg: #3a1717;
            --error-text: #ffb4b4; --mark: #6b5a10; --mark-text: #fff6cf;
          }
        }
        *, *::before, *::after { box-sizing: border-box; }
        [hidden] { display: none !important; }
        html { -webkit-text-size-adjust: 100%; }
        body {
          margin: 0; background: var(--bg); color: var(--text); font-family: var(--font);
          font-size: 1rem; line-height: 1.5;
        }
        code { font-family: ui-monospace, "Noto Sans Mono", monospace; font-size: 0.92em; }
        .skip { position: absolute; left: -999px; top: 0; }
        .skip:focus { left: 0.5rem; top: 0.5rem; background: var(--card); padding: 0.5rem; z-index: 10; }
        .visually-hidden {
          position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
          clip-path: inset(50%); white-space: nowrap; border: 0; padding: 0; margin: -1px;
        }
        .top, main, .foot { max-width: 54rem; margin: 0 auto; padding: 0 1rem; }
        .top { padding-top: 1.25rem; }
        .brand { display: flex; align-items: center; gap: 0.6rem; }
        .brand img { display: block; }
        h1 { font-size: 1.6rem; margin: 0; }
        h2 { font-size: 1.15rem; margin: 0 0 0.75rem; }
        h3 { font-size: 1rem; margin: 0.75rem 0 0.25rem; }
        .tagline { margin: 0.25rem 0 0; color: var(--muted); }
        .server { margin: 0.25rem 0 0; font-size: 0.9rem; color: var(--muted); overflow-wrap: anywhere; }
        .server .ok { color: var(--accent); font-weight: 600; }
        .key-state { margin: 0.25rem 0 0; font-size: 0.9rem; display: flex; gap: 0.5rem; flex-wrap: wrap; align-items: center; }
        .card {
          background: var(--card); border: 1px solid var(--line); border-radius: 12px;
          padding: 1rem; margin: 1rem 0;
        }
        .fields { display: flex; flex-wrap: wrap; gap: 0.75rem 1.25rem; }
        .field { display: flex; flex-direction: column; gap: 0.25rem; min-width: 0; flex: 1 1 12rem; }
        label { font-weight: 600; font-size: 0.95rem; }
        select, input[type="password"] {
          font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
          border-radius: 8px; padding: 0.5rem 0.6rem; min-height: 2.75rem; width: 100%;
        }
        button {
          font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--line);
          border-radius: 8px; padding: 0.55rem 1rem; min-height: 2.75rem; cursor: pointer;
        }
        button:hover { border-color: var(--muted); }
        button:disabled { opacity: 0.55; cursor: not-allowed; }
        button.primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); font-weight: 600; }
        button.link {
          background: none; border: none; padding: 0.25rem; min-height: 0; color: var(--focus);
          text-decoration: underline;
        }
        :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
        .note { font-size: 0.9rem; color: var(--muted); margin: 0.5rem 0 0; }
        .drop {
          border: 2px dashed var(--line); border-radius: 10px; padding: 1.25rem 1rem; text-align: center;
        }
        .drop.over { border-color: var(--accent); background: color-mix(in srgb, var(--accent) 10%, transparent); }
        .drop-hint { margin: 0.5rem 0 0; color: var(--muted); font-size: 0.9rem; }
        .record { display: flex; align-items: center; gap: 0.75rem; margin-top: 1rem; flex-wrap: wrap; }
        #record { display: inline-flex; align-items: center; gap: 0.5rem; }
        #record .dot { width: 0.8rem; height: 0.8rem; border-radius: 50%; background: #c62828; }
        #record[aria-pressed="true"] { border-color: #c62828; }
        #record[aria-pressed="true"] .dot { border-radius: 2px; }
        .record-time { font-variant-numeric: tabular-nums; min-width: 3rem; }
        meter { flex: 1 1 6rem; max-width: 14rem; height: 0.9rem; }
        .status { margin: 0 0 0.5rem; color: var(--muted); }
        .status.busy::before {
          content: ""; display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.5rem;
          border: 2px solid var(--muted); border-top-color: transparent; border-radius: 50%;
          animation: spin 0.8s linear infinite; vertical-align: -0.1rem;
        }
        @keyframes spin { to { transform: rotate(360deg); } }
        @media (prefers-reduced-motion: reduce) { .status.busy::before { animation: none; } }
        .error {
          background: var(--error-bg); color: var(--error-text); border-radius: 8px; padding: 0.75rem;
          margin: 0 0 0.75rem; overflow-wrap: anywhere;
        }
        .error code { display: block; margin-top: 0.25rem; font-size: 0.85em; opacity: 0.85; }
        audio { width: 100%; margin: 0.25rem 0 0.75rem; }
        .transcript { font-size: 1.35rem; line-height: 2.1; overflow-wrap: anywhere; }
        .transcript:empty { display: none; }
        .word {
          font: inherit; line-height: 1.6; color: inherit; background: none; border: none;
          border-radius: 6px; padding: 0 0.15rem; min-height: 0; margin: 0; cursor: pointer;
        }
        .word:hover { background: color-mix(in srgb, var(--accent) 15%, transparent); }
        .word.current { background: var(--mark); color: var(--mark-text); }
        .timings { margin-top: 0.75rem; }
        .timings summary { cursor: pointer; font-weight: 600; padding: 0.25rem 0; }
        .table-wrap { max-height: 16rem; overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
        .timings table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
        .timings th, .timings td { text-align: start; padding: 0.3rem 0.6rem; border-bottom: 1px solid var(--line); }
        .timings th { position: sticky; top: 0; background: var(--card); font-size: 0.85rem; color: var(--muted); }
        .timings td:nth-child(2) { font-size: 1.1rem; }
        .stats {
          display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 0.5rem;
          margin: 1rem 0 0;
        }
        .stats div { background: var(--bg); border-radius: 8px; padding: 0.5rem 0.75rem; }
        .stats dt { font-size: 0.8rem; color: var(--muted); }
        .stats dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
        .stats .sub { display: block; font-weight: 400; font-size: 0.8rem; color: var(--muted); }
        .downloads { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; margin-top: 1rem; }
        .downloads-title { font-weight: 600; margin-right: 0.25rem; }
        .live { border-top: 1px solid var(--line); margin-top: 1rem; }
        .foot { color: var(--muted); font-size: 0.85rem; padding-bottom: 2rem; }
        dialog {
          border: 1px solid var(--line); border-radius: 12px; background: var(--card); color: var(--text);
          width: min(28rem, calc(100vw - 2rem)); padding: 1.25rem;
        }
        dialog::backdrop { background: rgb(0 0 0 / 0.45); }
        dialog label { display: block; margin-top: 0.75rem; margin-bottom: 0.25rem; }
        .dialog-buttons { display: flex; gap: 0.5rem; margin-top: 1rem; flex-wrap: wrap; }
        @media (max-width: 30rem) {
          .top, main, .foot { padding: 0 0.75rem; }
          .top { padding-top: 1rem; }
          .card { padding: 0.85rem; border-radius: 10px; }
          .transcript { font-size: 1.2rem; }
          .drop { padding: 1rem 0.75rem; }
          .downloads-title { flex-basis: 100%; }
        }

        """#

    /// A small mark for the tab and the header (`/ui/icon.svg`).
    static let icon = #"""
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
        <rect width="32" height="32" rx="8" fill="#0b6e4f"/>
        <g fill="#fff"><rect x="6" y="13" width="3" height="6" rx="1.5"/><rect x="11" y="9" width="3" height="14" rx="1.5"/>
        <rect x="16" y="6" width="3" height="20" rx="1.5"/><rect x="21" y="11" width="3" height="10" rx="1.5"/></g>
        </svg>

        """#
}
