// Decoding through FFmpeg's libraries (libavformat + libavcodec) from memory, with a custom
// AVIOContext: the containers and codecs libsndfile does not read (WebM/Opus from browsers,
// MP4/M4A/AAC from phones, AMR/3GP, CAF with AAC/ALAC, WMA, ...) and MPEG audio (MP3), whose
// libsndfile path (libmpg123) writes to stderr. Same invariants as the libsndfile path.

import CFFmpeg
import Foundation

enum FFmpegDecoder {
    /// What the probe found, for messages: `"container 'mov,mp4,m4a,3gp,3g2,mj2' (QuickTime / MOV), codec 'aac' (AAC (Advanced Audio Coding))"`.
    struct Found {
        var container: String
        var containerLongName: String
        var codec: String?
        var codecLongName: String?

        var description: String {
            var text = "container '\(container)' (\(containerLongName))"
            if let codec { text += ", codec '\(codec)'" + (codecLongName.map { " (\($0))" } ?? "") }
            return text
        }

        /// A short name for warnings: `"webm"`, `"mp4"`, `"mp3"`.
        var shortContainer: String {
            switch container {
            case "matroska,webm": return "WebM/Matroska"
            case "mov,mp4,m4a,3gp,3g2,mj2": return "MP4/M4A/3GP"
            case "asf": return "WMA/ASF"
            case "ogg": return "Ogg"
            default: return (container.split(separator: ",").first.map(String.init) ?? container).uppercased()
            }
        }
    }

    /// Whether FFmpeg recognises a container in `bytes` (nil when it does not: the caller then
    /// reports libsndfile's own error).
    enum Outcome {
        case decoded(DecodedAudio)
        case unrecognised(String)
    }

    /// Decodes the first audio stream of `bytes` to mono at its own rate.
    /// - Throws: `AudioError` naming the container and codec found, when there is one.
    static func decode(_ bytes: UnsafeRawBufferPointer, maxSeconds: Double?) throws(AudioError) -> Outcome {
        AudioLog.installFFmpegCallback()
        let source = FFmpegSource(bytes)
        let bufferSize = 32 * 1024
        guard let buffer = av_malloc(bufferSize) else { throw .decodeFailed(detail: "out of memory for FFmpeg's read buffer") }
        let opaque = Unmanaged.passUnretained(source).toOpaque()
        guard let io = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), Int32(bufferSize), 0, opaque,
                                          ffmpegRead, nil, ffmpegSeek) else {
            av_free(buffer)
            throw .decodeFailed(detail: "out of memory for FFmpeg's I/O context")
        }
        var ioPointer: UnsafeMutablePointer<AVIOContext>? = io
        defer {
            av_freep(&io.pointee.buffer)
            avio_context_free(&ioPointer)
        }
        guard var format = avformat_alloc_context() else { throw .decodeFailed(detail: "out of memory for FFmpeg") }
        format.pointee.pb = io
        format.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        // A playlist or reference file must never make FFmpeg open a local path or a URL.
        vani_forbid_nested_io(format)
        var formatPointer: UnsafeMutablePointer<AVFormatContext>? = format
        // FFmpeg's own probe takes any score above 0 ("misdetection possible"): noise would be
        // decoded as MPEG audio. Only a confident guess is opened, with the demuxer it chose.
        guard let (inputFormat, probed) = probe(bytes) else {
            avformat_free_context(format)
            return .unrecognised("no container recognised")
        }
        let opened = avformat_open_input(&formatPointer, nil, inputFormat, nil)
        guard opened >= 0, let openedFormat = formatPointer else {
            // avformat_open_input frees the context on failure.
            throw .malformed(detail: "\(probed.description) found, but FFmpeg cannot open it (\(errorString(opened)))"
                             + indexHint(probed.container))
        }
        format = openedFormat
        defer { avformat_close_input(&formatPointer) }
        let container = format.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        let containerLong = format.pointee.iformat.flatMap { $0.pointee.long_name.map { String(cString: $0) } } ?? container
        var found = Found(container: container, containerLongName: containerLong)

        let info = avformat_find_stream_info(format, nil)
        var decoderPointer: UnsafePointer<AVCodec>?
        let index = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, &decoderPointer, 0)
        if index < 0 {
            let streams = (0..<Int(format.pointee.nb_streams)).compactMap { i -> String? in
                guard let parameters = format.pointee.streams[i]?.pointee.codecpar else { return nil }
                let kind = av_get_media_type_string(parameters.pointee.codec_type).map { String(cString: $0) } ?? "data"
                return "\(kind) \(String(cString: avcodec_get_name(parameters.pointee.codec_id)))"
            }
            if index == AVERROR_DECODER_NOT_FOUND_VALUE, let audio = firstAudioCodec(format) {
                found.codec = String(cString: avcodec_get_name(audio))
                found.codecLongName = avcodec_descriptor_get(audio).map { String(cString: $0.pointee.long_name) }
                throw .unsupported(detail: "\(found.description): this build of FFmpeg has no decoder for it")
            }
            if streams.isEmpty {
                throw .malformed(detail: "\(found.description) holds no streams"
                                 + (info < 0 ? " (\(errorString(info)))" : "") + indexHint(container))
            }
            throw .notAudio(detail: "\(found.description) holds no audio stream"
                            + (streams.isEmpty ? "" : " (streams: \(streams.joined(separator: ", ")))"))
        }
        guard let stream = format.pointee.streams[Int(index)], let parameters = stream.pointee.codecpar else {
            throw .malformed(detail: "\(found.description): the audio stream has no parameters")
        }
        found.codec = String(cString: avcodec_get_name(parameters.pointee.codec_id))
        found.codecLongName = avcodec_descriptor_get(parameters.pointee.codec_id)
            .flatMap { $0.pointee.long_name.map { String(cString: $0) } }
        for i in 0..<Int(format.pointee.nb_streams) where i != Int(index) {
            format.pointee.streams[i]?.pointee.discard = AVDISCARD_ALL
        }
        guard let decoder = decoderPointer else {
            throw .unsupported(detail: "\(found.description): this build of FFmpeg has no decoder for it")
        }
        var codecContext = avcodec_alloc_context3(decoder)
        guard let context = codecContext else { throw .decodeFailed(detail: "out of memory for FFmpeg's decoder") }
        defer { avcodec_free_context(&codecContext) }
        if avcodec_parameters_to_context(context, parameters) < 0 {
            throw .malformed(detail: "\(found.description): the stream's parameters are invalid")
        }
        context.pointee.thread_count = 1   // one decode, one thread: its log lines stay on this thread
        let openCodec = avcodec_open2(context, decoder, nil)
        guard openCodec >= 0 else {
            throw .unsupported(detail: "\(found.description): the decoder refused the stream (\(errorString(openCodec)))")
        }
        var state = DecodeState(found: found, sourceLength: bytes.count, maxSeconds: maxSeconds)
        let declaredChannels = Int(parameters.pointee.ch_layout.nb_channels)
        if declaredChannels > AudioDecoder.maxChannels { throw .tooManyChannels(declaredChannels) }
        let declaredSeconds = declaredDuration(format, stream)

        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer { av_packet_free(&packet); av_frame_free(&frame) }
        guard let packet, let frame else { throw .decodeFailed(detail: "out of memory for FFmpeg's packets") }

        var readError: Int32 = 0
        var lastPacketFailed = false
        while true {
            let read = av_read_frame(format, packet)
            if read < 0 {
                if read != vani_averror_eof() { readError = read }
                break
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == index else { continue }
            let sent = avcodec_send_packet(context, packet)
            if sent < 0 && sent != vani_averror_eagain() {
                state.failedPackets += 1
                state.lastError = sent
                lastPacketFailed = true
                continue
            }
            lastPacketFailed = try state.drain(context, frame, declaredSeconds: declaredSeconds)
        }
        _ = avcodec_send_packet(context, nil)   // flush: frames the decoder still holds
        if try state.drain(context, frame, declaredSeconds: declaredSeconds) { lastPacketFailed = true }

        guard !state.mono.isEmpty else {
            if readError != 0 || state.failedPackets > 0 {
                throw .decodeFailed(detail: "\(found.description): \(errorString(readError != 0 ? readError : state.lastError))")
            }
            throw .noSamples
        }
        var audio = DecodedAudio(samples: state.mono, sampleRate: state.rate, channels: state.channels,
                                 format: "\(container): \(found.codecLongName ?? found.codec ?? "?")")
        let decoded = audio.duration
        let name = found.shortContainer
        if readError != 0 {
            audio.warnings.append(.truncated(container: name, expectedSeconds: declaredSeconds, decodedSeconds: decoded,
                                             detail: "the container ends with missing or damaged data: \(errorString(readError))"))
        } else if lastPacketFailed {
            audio.warnings.append(.truncated(container: name, expectedSeconds: nil, decodedSeconds: decoded,
                                             detail: "the last frame is incomplete"))
        } else if let declaredSeconds, decoded < declaredSeconds - max(0.1, 0.02 * declaredSeconds) {
            audio.warnings.append(.truncated(container: name, expectedSeconds: declaredSeconds, decodedSeconds: decoded))
        } else if let cut = Sniff.containerCut(bytes) {
            // The demuxer stopped quietly at the cut: the container's own sizes tell.
            audio.warnings.append(.truncated(container: name, expectedSeconds: nil, decodedSeconds: decoded, detail: cut))
        }
        let skipped = state.failedPackets - (lastPacketFailed ? 1 : 0)
        if skipped > 0 {
            audio.warnings.append(.damaged(container: name, skippedPackets: skipped, detail: errorString(state.lastError)))
        }
        return .decoded(audio)
    }

    // MARK: - Decoding state

    struct DecodeState {
        let found: Found
        let sourceLength: Int
        let maxSeconds: Double?
        var mono: [Float] = []
        var rate = 0
        var channels = 0
        var decodedSamples = 0
        var failedPackets = 0
        var lastError: Int32 = 0

        init(found: Found, sourceLength: Int, maxSeconds: Double?) {
            self.found = found; self.sourceLength = sourceLength; self.maxSeconds = maxSeconds
        }

        /// Receives every frame the decoder has ready; true when the decoder reported an error.
        mutating func drain(_ context: UnsafeMutablePointer<AVCodecContext>, _ frame: UnsafeMutablePointer<AVFrame>,
                            declaredSeconds: Double?) throws(AudioError) -> Bool {
            while true {
                let got = avcodec_receive_frame(context, frame)
                if got == vani_averror_eagain() || got == vani_averror_eof() { return false }
                if got < 0 {
                    failedPackets += 1
                    lastError = got
                    return true
                }
                defer { av_frame_unref(frame) }
                try append(frame.pointee, declaredSeconds: declaredSeconds)
            }
        }

        mutating func append(_ frame: AVFrame, declaredSeconds: Double?) throws(AudioError) {
            let frameChannels = Int(frame.ch_layout.nb_channels)
            let count = Int(frame.nb_samples)
            guard count > 0 else { return }
            guard frameChannels > 0 else { throw .noChannels }
            guard frameChannels <= AudioDecoder.maxChannels else { throw .tooManyChannels(frameChannels) }
            let frameRate = Int(frame.sample_rate)
            if rate == 0 {
                guard Resampler.supportedRates.contains(frameRate) else { throw .badSampleRate(frameRate) }
                rate = frameRate
                channels = frameChannels
            } else if frameRate != rate {
                throw .decodeFailed(detail: "\(found.description): the sample rate changes from \(rate) to \(frameRate) Hz mid-stream")
            }
            guard let data = frame.extended_data else { throw .decodeFailed(detail: "\(found.description): a frame without data") }
            let sampleFormat = AVSampleFormat(rawValue: frame.format)
            let planar = av_sample_fmt_is_planar(sampleFormat) != 0
            let width = Int(av_get_bytes_per_sample(sampleFormat))
            guard width > 0 else { throw .unsupported(detail: "\(found.description): sample format \(frame.format)") }
            let read = try Self.reader(sampleFormat, found: found)
            let scale = 1 / Float(frameChannels)
            for i in 0..<count {
                var sum: Float = 0
                for c in 0..<frameChannels {
                    let plane = planar ? data[c] : data[0]
                    guard let plane else { throw .decodeFailed(detail: "\(found.description): a frame without channel \(c)") }
                    let offset = planar ? i * width : (i * frameChannels + c) * width
                    let value = read(UnsafeRawPointer(plane + offset))
                    if !(abs(value) <= AudioDecoder.maxMagnitude) {
                        let index = decodedSamples + i * frameChannels + c
                        if !value.isFinite { throw .nonFiniteSamples(index: index) }
                        throw .outOfRange(index: index, value: value)
                    }
                    sum += value
                }
                mono.append(frameChannels == 1 ? sum : sum * scale)
            }
            decodedSamples += count * frameChannels
            if let maxSeconds, Double(mono.count) > maxSeconds * Double(rate) {
                let seconds = max(declaredSeconds ?? 0, Double(mono.count) / Double(rate))
                throw .tooLong(seconds: seconds, limit: maxSeconds)
            }
            // As for libsndfile: no honest codec turns one byte into more than 4096 samples.
            if decodedSamples > max(sourceLength, 1) * 4096 {
                throw .decodeFailed(detail: "\(found.description): the decoder produced more samples than the data can hold")
            }
        }

        /// Reads one sample of `format` as a float in [-1, 1] (integer PCM scaled by 1/2^(bits−1)).
        static func reader(_ format: AVSampleFormat, found: Found) throws(AudioError) -> (UnsafeRawPointer) -> Float {
            switch av_get_packed_sample_fmt(format) {
            case AV_SAMPLE_FMT_U8: return { (Float($0.load(as: UInt8.self)) - 128) / 128 }
            case AV_SAMPLE_FMT_S16: return { Float($0.loadUnaligned(as: Int16.self)) / 32768 }
            case AV_SAMPLE_FMT_S32: return { Float(Double($0.loadUnaligned(as: Int32.self)) / 2_147_483_648) }
            case AV_SAMPLE_FMT_S64: return { Float(Double($0.loadUnaligned(as: Int64.self)) / 9_223_372_036_854_775_808) }
            case AV_SAMPLE_FMT_FLT: return { $0.loadUnaligned(as: Float.self) }
            case AV_SAMPLE_FMT_DBL: return { Float($0.loadUnaligned(as: Double.self)) }
            default: throw .unsupported(detail: "\(found.description): sample format \(format.rawValue)")
            }
        }
    }

    // MARK: - Helpers

    /// The length the container or stream declares, in seconds; nil when unknown or estimated
    /// from the bitrate (an estimate from a cut file's size says nothing about the cut).
    static func declaredDuration(_ format: UnsafeMutablePointer<AVFormatContext>,
                                 _ stream: UnsafeMutablePointer<AVStream>) -> Double? {
        guard format.pointee.duration_estimation_method != AVFMT_DURATION_FROM_BITRATE else { return nil }
        let noValue = Int64.min  // AV_NOPTS_VALUE
        let base = stream.pointee.time_base
        if stream.pointee.duration != noValue, stream.pointee.duration > 0, base.den > 0, base.num > 0 {
            return Double(stream.pointee.duration) * Double(base.num) / Double(base.den)
        }
        if format.pointee.duration != noValue, format.pointee.duration > 0 {
            return Double(format.pointee.duration) / Double(AV_TIME_BASE)
        }
        return nil
    }

    /// Why a container with its index after the audio says nothing when cut.
    static func indexHint(_ container: String) -> String {
        if container.hasPrefix("mov,") { return "; an MP4/M4A/3GP cut before its index ('moov', written after the audio) cannot be read" }
        if container == "caf" { return "; a CAF cut before its packet table ('pakt', written after the audio) cannot be read" }
        return ""
    }

    /// The container FFmpeg's probe finds in the first bytes (up to 1 MiB), when it is sure
    /// enough: a score above `AVPROBE_SCORE_RETRY` (a magic number or several consistent frames).
    static func probe(_ bytes: UnsafeRawBufferPointer) -> (UnsafePointer<AVInputFormat>, Found)? {
        let size = min(bytes.count, 1 << 20)
        var buffer = [UInt8](repeating: 0, count: size + Int(AVPROBE_PADDING_SIZE))
        buffer.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<size])) }
        return buffer.withUnsafeMutableBufferPointer { pointer -> (UnsafePointer<AVInputFormat>, Found)? in
            var data = AVProbeData()
            data.buf = pointer.baseAddress
            data.buf_size = Int32(size)
            data.filename = nil
            var score: Int32 = 0
            guard let format = av_probe_input_format3(&data, 1, &score), score > AVPROBE_SCORE_RETRY else { return nil }
            let name = String(cString: format.pointee.name)
            return (format, Found(container: name, containerLongName: format.pointee.long_name.map { String(cString: $0) } ?? name))
        }
    }

    static func firstAudioCodec(_ format: UnsafeMutablePointer<AVFormatContext>) -> AVCodecID? {
        for i in 0..<Int(format.pointee.nb_streams) {
            if let parameters = format.pointee.streams[i]?.pointee.codecpar,
               parameters.pointee.codec_type == AVMEDIA_TYPE_AUDIO {
                return parameters.pointee.codec_id
            }
        }
        return nil
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = buffer.withUnsafeMutableBufferPointer { av_strerror(code, $0.baseAddress, $0.count) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// AVERROR_DECODER_NOT_FOUND (FFERRTAG(0xF8,'D','E','C')).
    static let AVERROR_DECODER_NOT_FOUND_VALUE: Int32 = {
        let tag = UInt32(0xF8) | UInt32(UInt8(ascii: "D")) << 8 | UInt32(UInt8(ascii: "E")) << 16
            | UInt32(UInt8(ascii: "C")) << 24
        return -Int32(bitPattern: tag)
    }()
}

// MARK: - Custom I/O

/// The bytes FFmpeg reads through its AVIOContext callbacks. Lives only inside the decode call.
private final class FFmpegSource {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> FFmpegSource {
        Unmanaged<FFmpegSource>.fromOpaque(opaque!).takeUnretainedValue()
    }
}

private let ffmpegRead: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
    opaque, destination, size in
    let source = FFmpegSource.from(opaque)
    guard let destination, size > 0 else { return 0 }
    guard source.offset < source.bytes.count else { return vani_averror_eof() }
    let n = min(Int(size), source.bytes.count - source.offset)
    UnsafeMutableRawPointer(destination).copyMemory(from: source.bytes.baseAddress! + source.offset, byteCount: n)
    source.offset += n
    return Int32(n)
}

private let ffmpegSeek: @convention(c) (UnsafeMutableRawPointer?, Int64, Int32) -> Int64 = { opaque, offset, whence in
    let source = FFmpegSource.from(opaque)
    if whence & AVSEEK_SIZE != 0 { return Int64(source.bytes.count) }
    let base: Int
    switch whence & ~AVSEEK_FORCE {
    case SEEK_SET: base = 0
    case SEEK_CUR: base = source.offset
    case SEEK_END: base = source.bytes.count
    default: return -1
    }
    let (target, overflow) = base.addingReportingOverflow(Int(offset))
    guard !overflow, target >= 0 else { return -1 }
    source.offset = target
    return Int64(target)
}
