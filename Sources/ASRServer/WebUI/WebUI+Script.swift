// The browser page's scripts, compiled into the binary (see Routes/WebUIRoutes.swift): the page's logic
// (`/ui/app.js`) and the AudioWorklet module that captures the microphone as PCM
// (`/ui/recorder-worklet.js`; the CSP allows no blob: or inline scripts, so it has its own path).

extension WebUI {
    /// The page's logic: settings from `/health`, upload and drop, recording through the worklet
    /// into a 16-bit PCM WAV, `POST /asr` with timestamps, playback with the current word marked,
    /// SRT/WebVTT built here from the words, MLflow-shaped errors, the API key on a 401.
    static let script = #"""
        'use strict';
        (() => {
          const $ = (id) => document.getElementById(id);
          const KEY = 'vani.apiKey';
          // The release's 22 languages, offered while a lazily loaded model has not said its own.
          const RELEASE_LANGUAGES = ['as', 'bn', 'brx', 'doi', 'gu', 'hi', 'kn', 'kok', 'ks', 'mai', 'ml',
            'mni', 'mr', 'ne', 'or', 'pa', 'sa', 'sat', 'sd', 'ta', 'te', 'ur'];
          const NAMES = {
            as: ['Assamese', 'অসমীয়া'], bn: ['Bengali', 'বাংলা'], brx: ['Bodo', 'बड़ो'],
            doi: ['Dogri', 'डोगरी'], gu: ['Gujarati', 'ગુજરાતી'], hi: ['Hindi', 'हिन्दी'],
            kn: ['Kannada', 'ಕನ್ನಡ'], kok: ['Konkani', 'कोंकणी'], ks: ['Kashmiri', 'کٲشُر'],
            mai: ['Maithili', 'मैथिली'], ml: ['Malayalam', 'മലയാളം'], mni: ['Manipuri', 'মৈতৈলোন্'],
            mr: ['Marathi', 'मराठी'], ne: ['Nepali', 'नेपाली'], or: ['Odia', 'ଓଡ଼ିଆ'],
            pa: ['Punjabi', 'ਪੰਜਾਬੀ'], sa: ['Sanskrit', 'संस्कृतम्'], sat: ['Santali', 'ᱥᱟᱱᱛᱟᱲᱤ'],
            sd: ['Sindhi', 'سنڌي'], ta: ['Tamil', 'தமிழ்'], te: ['Telugu', 'తెలుగు'], ur: ['Urdu', 'اردو'],
          };
          const MAX_RECORD_SECONDS = 600;

          const state = {
            busy: false, languagesKnown: false, result: null, words: [], buttons: [], current: -1,
            audioURL: null, name: 'audio', recorder: null, frame: 0, roundTripMs: 0,
          };

          // MARK: - Errors and status

          class ServiceError extends Error {
            constructor(message, code, status) { super(message); this.code = code || ''; this.status = status || 0; }
          }

          async function errorFrom(response) {
            const text = await response.text().catch(() => '');
            try {
              const body = JSON.parse(text);
              if (body && typeof body.message === 'string') {
                return new ServiceError(body.message, body.error_code, response.status);
              }
            } catch (_) { /* not JSON: fall through */ }
            return new ServiceError(text.trim() || response.statusText || 'request failed', '', response.status);
          }

          function setStatus(text, busy) {
            const status = $('status');
            status.textContent = text;
            status.classList.toggle('busy', Boolean(busy));
          }

          function showError(error) {
            const box = $('error');
            box.replaceChildren();
            const message = document.createElement('span');
            message.textContent = error.message || String(error);
            box.append(message);
            if (error.code || error.status) {
              const detail = document.createElement('code');
              detail.textContent = [error.code, error.status ? 'HTTP ' + error.status : ''].filter(Boolean).join(' · ');
              box.append(' ', detail);
            }
            box.hidden = false;
          }

          function clearError() { $('error').hidden = true; $('error').replaceChildren(); }

          function setBusy(busy) {
            state.busy = busy;
            $('choose').disabled = busy;
            $('record').disabled = busy && !state.recorder;
            $('result').setAttribute('aria-busy', String(busy));
          }

          // MARK: - API key (sessionStorage only)

          function storedKey() { try { return sessionStorage.getItem(KEY) || ''; } catch (_) { return ''; } }

          function storeKey(key) {
            try { if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY); } catch (_) { /* private mode */ }
            $('key-state').hidden = !key;
          }

          function askForKey(message) {
            const dialog = $('key-dialog');
            $('key-message').textContent = message;
            $('key-input').value = '';
            return new Promise((resolve) => {
              const finish = (key) => {
                $('key-form').removeEventListener('submit', onSubmit);
                $('key-cancel').removeEventListener('click', onCancel);
                dialog.removeEventListener('cancel', onCancel);
                if (dialog.open) dialog.close();
                resolve(key);
              };
              const onSubmit = (event) => {
                event.preventDefault();
                const key = $('key-input').value.trim();
                if (key) finish(key);
              };
              const onCancel = (event) => { event.preventDefault(); finish(null); };
              $('key-form').addEventListener('submit', onSubmit);
              $('key-cancel').addEventListener('click', onCancel);
              dialog.addEventListener('cancel', onCancel);
              dialog.showModal();
              $('key-input').focus();
            });
          }

          /// fetch with the key; on a 401, asks for a key and tries again.
          async function api(path, options) {
            for (;;) {
              const headers = new Headers(options.headers || {});
              const key = storedKey();
              if (key) headers.set('Authorization', 'Bearer ' + key);
              let response;
              const sent = performance.now();
              try {
                response = await fetch(path, { ...options, headers, cache: 'no-store' });
                // Upload, queue, transcription and reply: not the time spent typing a key.
                state.roundTripMs = performance.now() - sent;
              } catch (error) {
                throw new ServiceError('Could not reach the service: ' + error.message, 'NETWORK_ERROR', 0);
              }
              if (response.status !== 401) {
                if (!response.ok) throw await errorFrom(response);
                return response;
              }
              const error = await errorFrom(response);
              const newKey = await askForKey(key ? 'That key was not accepted; try another.'
                                                 : 'This service needs an API key for transcription.');
              if (newKey === null) throw error;
              storeKey(newKey);
            }
          }

          // MARK: - Settings from /health

          function languageLabel(code) {
            const name = NAMES[code];
            return name ? name[1] + ' · ' + name[0] + ' (' + code + ')' : code;
          }

          function fill(select, values, label, preferred) {
            const previous = select.value || preferred;
            select.replaceChildren(...values.map((value) => {
              const option = document.createElement('option');
              option.value = value;
              option.textContent = label(value);
              if (NAMES[value]) option.lang = value;
              return option;
            }));
            if (values.includes(previous)) select.value = previous;
          }

          async function loadHealth() {
            let health;
            try {
              const response = await fetch('/health', { cache: 'no-store' });
              health = await response.json();
            } catch (error) {
              $('server').textContent = 'The service does not answer /health: ' + error.message;
              return;
            }
            const model = health.model || {};
            const server = $('server');
            server.replaceChildren();
            const status = document.createElement('span');
            status.className = health.status === 'ok' ? 'ok' : '';
            status.textContent = health.status;
            const loading = model.state === 'idle' ? 'loads on the first request' : model.state;
            server.append('Model ', model.name || '?', ' (', loading || '?', ') · service ', status, ' · v' + (health.version || '?'));

            const known = Array.isArray(model.languages) && model.languages.length > 0;
            state.languagesKnown = known;
            fill($('language'), known ? model.languages : RELEASE_LANGUAGES, languageLabel, 'hi');
            const note = $('language-note');
            note.hidden = known;
            note.textContent = known ? '' : 'The model has not loaded yet, so this is the release\'s list; '
              + 'the service says which languages it has if you pick another.';
            const decoders = Array.isArray(model.decoders) && model.decoders.length ? model.decoders : ['ctc', 'rnnt'];
            fill($('decoder'), decoders, (d) => d === 'ctc' ? 'CTC (ctc)' : d === 'rnnt' ? 'RNN-T (rnnt)' : d, 'ctc');

            // Live transcription needs a realtime WebSocket the service does not offer yet: the page
            // shows the section only when /health advertises one.
            const live = health.realtime;
            $('live').hidden = !live;
            if (live) {
              $('live-note').textContent = 'This service advertises live transcription'
                + (live.path ? ' at ' + live.path : '') + '; this page does not speak that protocol yet.';
            }
            if (health.status === 'loading') setTimeout(loadHealth, 1000);
          }

          // MARK: - Transcription

          function dataURL(blob) {
            return new Promise((resolve, reject) => {
              const reader = new FileReader();
              reader.onload = () => resolve(reader.result);
              reader.onerror = () => reject(reader.error);
              reader.readAsDataURL(blob);
            });
          }

          function setAudio(blob) {
            if (state.audioURL) URL.revokeObjectURL(state.audioURL);
            state.audioURL = URL.createObjectURL(blob);
            const player = $('player');
            player.src = state.audioURL;
            player.hidden = false;
          }

          async function transcribe(blob, name) {
            if (state.busy) return;
            clearError();
            setBusy(true);
            state.name = name;
            setAudio(blob);
            clearResult();
            const kilobytes = Math.max(1, Math.round(blob.size / 1024));
            setStatus('Transcribing ' + name + ' (' + kilobytes + ' KB)…', true);
            try {
              const url = await dataURL(blob);
              const audio = url.slice(url.indexOf(',') + 1);
              const body = JSON.stringify({
                audio, language: $('language').value, decoding: $('decoder').value, timestamps: true,
              });
              const response = await api('/asr', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
              const result = await response.json();
              showResult(result, state.roundTripMs);
              setStatus('Transcribed ' + name + ': ' + result.duration.toFixed(2) + ' s of audio in '
                + Math.round(result.processing_ms) + ' ms.');
              if (!state.languagesKnown) loadHealth();
            } catch (error) {
              showError(error);
              // Audio the service could not decode is no use to the player either.
              if (error.status === 422) $('player').hidden = true;
              setStatus('Transcription of ' + name + ' failed.');
            } finally {
              setBusy(false);
            }
          }

          function clearResult() {
            state.result = null;
            state.words = [];
            state.buttons = [];
            state.current = -1;
            $('transcript').replaceChildren();
            $('stats').hidden = true;
            $('downloads').hidden = true;
            $('timings').hidden = true;
            $('timings-body').replaceChildren();
          }

          function showResult(result, roundTripMs) {
            state.result = result;
            state.words = Array.isArray(result.words) ? result.words : [];
            const box = $('transcript');
            box.lang = result.language || '';
            box.dir = ['ur', 'ks', 'sd'].includes(result.language) ? 'rtl' : 'auto';
            if (state.words.length === 0) {
              const empty = document.createElement('p');
              empty.textContent = result.text || '(no speech recognised)';
              box.replaceChildren(empty);
            } else {
              const nodes = [];
              state.buttons = state.words.map((word, index) => {
                const button = document.createElement('button');
                button.type = 'button';
                button.className = 'word';
                button.textContent = word.word;
                button.dataset.index = String(index);
                button.title = word.start.toFixed(2) + '–' + word.end.toFixed(2) + ' s';
                button.tabIndex = index === 0 ? 0 : -1;
                if (index > 0) nodes.push(' ');
                nodes.push(button);
                return button;
              });
              box.replaceChildren(...nodes);
            }
            $('timings-body').replaceChildren(...state.words.map((word, index) => {
              const row = document.createElement('tr');
              [String(index + 1), word.word, word.start.toFixed(2), word.end.toFixed(2)].forEach((text, column) => {
                const cell = document.createElement('td');
                cell.textContent = text;
                if (column === 1) { cell.lang = result.language || ''; cell.dir = 'auto'; }
                row.append(cell);
              });
              return row;
            }));
            $('timings').hidden = state.words.length === 0;
            $('stat-duration').textContent = result.duration.toFixed(2) + ' s';
            $('stat-processing').textContent = Math.round(result.processing_ms) + ' ms';
            const rtf = result.duration > 0 ? result.processing_ms / 1000 / result.duration : 0;
            const speed = document.createElement('span');
            speed.className = 'sub';
            speed.textContent = rtf <= 0 ? '' : rtf < 1
              ? (1 / rtf).toFixed(rtf < 0.1 ? 0 : 1) + '× faster than real time' : 'slower than real time';
            $('stat-rtf').replaceChildren(rtf.toFixed(3), speed);
            $('stat-roundtrip').textContent = Math.round(roundTripMs) + ' ms';
            $('stats').hidden = false;
            $('downloads').hidden = false;
          }

          // MARK: - Playback: the current word, click to seek

          function wordAt(time) {
            const words = state.words;
            let lo = 0, hi = words.length - 1, found = -1;
            while (lo <= hi) {
              const mid = (lo + hi) >> 1;
              if (words[mid].start <= time) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
            }
            if (found < 0) return -1;
            const next = words[found + 1];
            return time < (next ? next.start : words[found].end + 0.5) ? found : -1;
          }

          function mark(index) {
            if (index === state.current) return;
            const old = state.buttons[state.current];
            if (old) { old.classList.remove('current'); old.removeAttribute('aria-current'); }
            state.current = index;
            const now = state.buttons[index];
            if (now) { now.classList.add('current'); now.setAttribute('aria-current', 'true'); }
          }

          function follow() {
            const player = $('player');
            mark(wordAt(player.currentTime));
            state.frame = player.paused ? 0 : requestAnimationFrame(follow);
          }

          function seekTo(index) {
            const word = state.words[index];
            const player = $('player');
            if (!word || !player.src) return;
            player.currentTime = word.start;
            mark(index);
            player.play().catch(() => { /* autoplay refused: the position is still set */ });
          }

          function focusWord(index) {
            const buttons = state.buttons;
            if (!buttons.length) return;
            const target = buttons[Math.max(0, Math.min(buttons.length - 1, index))];
            buttons.forEach((b) => { b.tabIndex = b === target ? 0 : -1; });
            target.focus();
          }

          // MARK: - Subtitles, built here from the words (the service's own rules: ≤ 42 characters,
          // ≤ 6 s, a new cue after a pause > 1 s)

          function cues(words) {
            const out = [];
            let cue = null;
            for (const w of words) {
              if (cue && (cue.text.length + 1 + w.word.length > 42 || w.end - cue.start > 6 || w.start - cue.end > 1)) {
                out.push(cue);
                cue = null;
              }
              if (cue) { cue.text += ' ' + w.word; cue.end = Math.max(cue.end, w.end); }
              else cue = { start: w.start, end: w.end, text: w.word };
            }
            if (cue) out.push(cue);
            if (!out.length && state.result && state.result.text) {
              out.push({ start: 0, end: state.result.duration, text: state.result.text });
            }
            return out;
          }

          function stamp(seconds, separator) {
            const ms = Math.round(seconds * 1000);
            const pad = (n, w) => String(n).padStart(w, '0');
            return pad(Math.floor(ms / 3600000), 2) + ':' + pad(Math.floor(ms / 60000) % 60, 2) + ':'
              + pad(Math.floor(ms / 1000) % 60, 2) + separator + pad(ms % 1000, 3);
          }

          function subtitles(format) {
            const list = cues(state.words);
            if (format === 'srt') {
              return list.map((c, i) => (i + 1) + '\n' + stamp(c.start, ',') + ' --> ' + stamp(c.end, ',') + '\n' + c.text + '\n\n').join('');
            }
            return 'WEBVTT\n\n' + list.map((c) => stamp(c.start, '.') + ' --> ' + stamp(c.end, '.') + '\n' + c.text + '\n\n').join('');
          }

          function download(format) {
            if (!state.result) return;
            const base = state.name.replace(/\.[^.]*$/, '') || 'transcript';
            const [text, type] = format === 'json'
              ? [JSON.stringify(state.result, null, 2) + '\n', 'application/json']
              : [subtitles(format), format === 'srt' ? 'application/x-subrip' : 'text/vtt'];
            const url = URL.createObjectURL(new Blob([text], { type: type + ';charset=utf-8' }));
            const link = document.createElement('a');
            link.href = url;
            link.download = base + '.' + format;
            link.hidden = true;
            document.body.append(link);
            link.click();
            link.remove();
            setTimeout(() => URL.revokeObjectURL(url), 30000);
          }

          // MARK: - Recording: PCM from an AudioWorklet, a 16-bit WAV built here

          function wav(chunks, sampleRate) {
            const frames = chunks.reduce((n, c) => n + c.length, 0);
            const buffer = new ArrayBuffer(44 + frames * 2);
            const view = new DataView(buffer);
            const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
            text(0, 'RIFF'); view.setUint32(4, 36 + frames * 2, true); text(8, 'WAVE');
            text(12, 'fmt '); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
            view.setUint32(24, sampleRate, true); view.setUint32(28, sampleRate * 2, true);
            view.setUint16(32, 2, true); view.setUint16(34, 16, true);
            text(36, 'data'); view.setUint32(40, frames * 2, true);
            let offset = 44;
            for (const chunk of chunks) {
              for (let i = 0; i < chunk.length; i++, offset += 2) {
                const s = Math.max(-1, Math.min(1, chunk[i]));
                view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
              }
            }
            return new Blob([buffer], { type: 'audio/wav' });
          }

          function recordingSupported() {
            return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia
              && window.AudioContext && window.AudioWorkletNode);
          }

          function showRecording(on) {
            $('record').setAttribute('aria-pressed', String(on));
            $('record-label').textContent = on ? 'Stop' : 'Record';
            $('choose').disabled = on;
            $('record-time').textContent = '0:00';
            $('level').value = 0;
          }

          async function startRecording() {
            clearError();
            if (!recordingSupported()) {
              showError(new ServiceError('Recording needs a secure page (https, or http on localhost) and a browser with AudioWorklet.'));
              return;
            }
            let stream;
            try {
              stream = await navigator.mediaDevices.getUserMedia({
                audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
              });
            } catch (error) {
              showError(new ServiceError('The microphone is not available: ' + error.message));
              return;
            }
            const context = new AudioContext();
            const recorder = { stream, context, chunks: [], frames: 0, timer: 0, started: performance.now(), done: null };
            try {
              await context.audioWorklet.addModule('/ui/recorder-worklet.js');
              const source = context.createMediaStreamSource(stream);
              const node = new AudioWorkletNode(context, 'vani-recorder', { numberOfInputs: 1, numberOfOutputs: 1 });
              recorder.node = node;
              recorder.finished = new Promise((resolve) => { recorder.done = resolve; });
              node.port.onmessage = (event) => {
                const data = event.data;
                if (data.type === 'audio') {
                  recorder.chunks.push(data.samples);
                  recorder.frames += data.samples.length;
                  $('level').value = Math.min(1, data.peak);
                  if (recorder.frames / context.sampleRate >= MAX_RECORD_SECONDS) stopRecording();
                } else if (data.type === 'done') {
                  recorder.done();
                }
              };
              // A silent path to the output keeps the node pulled in every browser.
              const mute = context.createGain();
              mute.gain.value = 0;
              source.connect(node).connect(mute).connect(context.destination);
              await context.resume();
            } catch (error) {
              stream.getTracks().forEach((t) => t.stop());
              context.close();
              showError(new ServiceError('Recording could not start: ' + error.message));
              return;
            }
            state.recorder = recorder;
            showRecording(true);
            setStatus('Recording… press Stop when done.');
            recorder.timer = setInterval(() => {
              const s = Math.floor((performance.now() - recorder.started) / 1000);
              $('record-time').textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
            }, 250);
          }

          async function stopRecording() {
            const recorder = state.recorder;
            if (!recorder || recorder.stopping) return;
            recorder.stopping = true;
            clearInterval(recorder.timer);
            recorder.node.port.postMessage('stop');
            await Promise.race([recorder.finished, new Promise((r) => setTimeout(r, 1000))]);
            recorder.stream.getTracks().forEach((t) => t.stop());
            const rate = recorder.context.sampleRate;
            recorder.context.close();
            state.recorder = null;
            showRecording(false);
            if (recorder.frames === 0) {
              showError(new ServiceError('Nothing was recorded: is the microphone muted?'));
              setStatus('Choose a file or record to begin.');
              return;
            }
            const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
            await transcribe(wav(recorder.chunks, rate), 'recording-' + stamp + '.wav');
          }

          // MARK: - Wiring

          function init() {
            storeKey(storedKey());
            $('forget-key').addEventListener('click', () => storeKey(''));
            $('choose').addEventListener('click', () => $('file').click());
            $('file').addEventListener('change', () => {
              const file = $('file').files[0];
              if (file) transcribe(file, file.name);
              $('file').value = '';
            });
            const drop = $('drop');
            ['dragenter', 'dragover'].forEach((type) => drop.addEventListener(type, (event) => {
              event.preventDefault();
              drop.classList.add('over');
            }));
            ['dragleave', 'drop'].forEach((type) => drop.addEventListener(type, () => drop.classList.remove('over')));
            drop.addEventListener('drop', (event) => {
              event.preventDefault();
              const file = event.dataTransfer && event.dataTransfer.files[0];
              if (file) transcribe(file, file.name);
            });
            // A file dropped beside the zone must not replace the page.
            window.addEventListener('dragover', (event) => event.preventDefault());
            window.addEventListener('drop', (event) => event.preventDefault());

            if (!recordingSupported()) {
              $('mic-note').hidden = false;
              $('mic-note').textContent = 'Recording needs https (or http on localhost) and a browser with AudioWorklet.';
            }
            $('record').addEventListener('click', () => (state.recorder ? stopRecording() : startRecording()));

            const player = $('player');
            player.addEventListener('play', () => { cancelAnimationFrame(state.frame); follow(); });
            player.addEventListener('seeked', () => mark(wordAt(player.currentTime)));
            player.addEventListener('timeupdate', () => { if (player.paused) mark(wordAt(player.currentTime)); });
            const transcript = $('transcript');
            transcript.addEventListener('click', (event) => {
              const button = event.target.closest('.word');
              if (button) seekTo(Number(button.dataset.index));
            });
            transcript.addEventListener('keydown', (event) => {
              const button = event.target.closest('.word');
              if (!button) return;
              const index = Number(button.dataset.index);
              const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
              if (event.key in moves) {
                event.preventDefault();
                // Right is backwards in Urdu, Kashmiri and Sindhi.
                const horizontal = event.key === 'ArrowLeft' || event.key === 'ArrowRight';
                const flip = horizontal && getComputedStyle(button).direction === 'rtl';
                focusWord(index + (flip ? -moves[event.key] : moves[event.key]));
              } else if (event.key === 'Home') { event.preventDefault(); focusWord(0); }
              else if (event.key === 'End') { event.preventDefault(); focusWord(state.buttons.length - 1); }
            });
            $('downloads').addEventListener('click', (event) => {
              const button = event.target.closest('button[data-format]');
              if (button) download(button.dataset.format);
            });
            loadHealth();
          }

          if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
          else init();
        })();

        """#

    /// The AudioWorklet module (`/ui/recorder-worklet.js`): mixes the input to mono and posts it
    /// to the page in blocks of 4096 frames with their peak level; on `'stop'` it posts what is
    /// left and `{type: 'done'}`.
    static let recorderWorklet = #"""
        'use strict';
        class VaniRecorder extends AudioWorkletProcessor {
          constructor() {
            super();
            this.block = new Float32Array(4096);
            this.filled = 0;
            this.recording = true;
            this.port.onmessage = (event) => {
              if (event.data === 'stop' && this.recording) {
                this.flush();
                this.recording = false;
                this.port.postMessage({ type: 'done' });
              }
            };
          }

          flush() {
            if (this.filled === 0) return;
            const samples = this.block.slice(0, this.filled);
            let peak = 0;
            for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
            this.port.postMessage({ type: 'audio', samples, peak }, [samples.buffer]);
            this.filled = 0;
          }

          process(inputs) {
            if (!this.recording) return false;
            const input = inputs[0];
            if (input && input.length > 0) {
              const channels = input.length;
              const frames = input[0].length;
              for (let i = 0; i < frames; i++) {
                let sum = 0;
                for (let c = 0; c < channels; c++) sum += input[c][i];
                this.block[this.filled++] = sum / channels;
                if (this.filled === this.block.length) this.flush();
              }
            }
            return true;
          }
        }
        registerProcessor('vani-recorder', VaniRecorder);

        """#
}
