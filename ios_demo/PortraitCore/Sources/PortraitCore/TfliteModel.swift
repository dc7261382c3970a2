import Foundation

/// A tensor of subgraph 0: its shape and TFLite `TensorType` (0 = FLOAT32).
public struct TensorInfo: Equatable {
    public let shape: [Int]
    public let type: Int
    public var isFloat32: Bool { type == 0 }
}

/// A file that is not a readable TFLite flatbuffer.
public struct ModelFileError: Error, CustomStringConvertible {
    public let description: String
}

/// Little-endian reads that throw instead of trapping past the end.
private struct Bytes {
    let data: [UInt8]

    func u8(_ at: Int) throws -> Int {
        guard at >= 0, at < data.count else { throw ModelFileError(description: "truncated or corrupt TFLite file") }
        return Int(data[at])
    }

    func u16(_ at: Int) throws -> Int { try u8(at) | u8(at + 1) << 8 }

    func i32(_ at: Int) throws -> Int { Int(Int32(truncatingIfNeeded: try u16(at) | u16(at + 2) << 16)) }

    func slice(_ at: Int, _ count: Int) throws -> [UInt8] {
        guard at >= 0, count >= 0, at + count <= data.count else { throw ModelFileError(description: "truncated zip entry") }
        return Array(data[at..<(at + count)])
    }
}

/// A flatbuffer table: fields found through its vtable.
private struct Table {
    let bytes: Bytes
    let position: Int

    private func field(_ index: Int) throws -> Int {
        let vtable = try position - bytes.i32(position)
        let entry = 4 + 2 * index
        guard try entry < bytes.u16(vtable) else { return 0 }
        return try bytes.u16(vtable + entry)
    }

    private func vector(_ index: Int) throws -> (start: Int, count: Int)? {
        let offset = try field(index)
        guard offset != 0 else { return nil }
        let start = try position + offset + bytes.i32(position + offset)
        return try (start + 4, bytes.i32(start))
    }

    func byte(_ index: Int) throws -> Int {
        let offset = try field(index)
        guard offset != 0 else { return 0 }
        return try bytes.u8(position + offset)
    }

    func ints(_ index: Int) throws -> [Int] {
        guard let vector = try vector(index) else { return [] }
        return try (0..<vector.count).map { try bytes.i32(vector.start + 4 * $0) }
    }

    func tables(_ index: Int) throws -> [Table] {
        guard let vector = try vector(index) else { return [] }
        return try (0..<vector.count).map { i in
            let at = vector.start + 4 * i
            return try Table(bytes: bytes, position: at + bytes.i32(at))
        }
    }
}

/// What the picker needs from a `.tflite` file without running it (see the Kotlin `TfliteModel`).
public struct TfliteModel {
    public static let cardFile = "model_card.json"
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    public let packedFiles: [String: Data]

    public var embeddedCard: Data? { packedFiles[TfliteModel.cardFile] }

    public init(_ data: Data) throws {
        let bytes = Bytes(data: [UInt8](data))
        guard data.count >= 8, String(bytes: bytes.data[4..<8], encoding: .ascii) == "TFL3" else {
            throw ModelFileError(description: "not a TFLite model (no TFL3 identifier)")
        }
        let model = Table(bytes: bytes, position: try bytes.i32(0))
        guard let subgraph = try model.tables(2).first else { throw ModelFileError(description: "the model has no subgraph") }
        let tensors = try subgraph.tables(0)
        func describe(_ field: Int) throws -> [TensorInfo] {
            try subgraph.ints(field).map { index in
                guard tensors.indices.contains(index) else { throw ModelFileError(description: "tensor index \(index) out of range") }
                return TensorInfo(shape: try tensors[index].ints(0), type: try tensors[index].byte(1))
            }
        }
        inputs = try describe(1)
        outputs = try describe(2)
        packedFiles = try storedZipEntries(bytes)
    }
}

/// The uncompressed ("stored") entries of a zip appended to the file, as tflite-support's populator writes.
private func storedZipEntries(_ bytes: Bytes) throws -> [String: Data] {
    let size = bytes.data.count
    guard size >= 22, let end = try stride(from: size - 22, through: max(0, size - 22 - 0xFFFF), by: -1)
        .first(where: { try bytes.i32($0) == 0x0605_4b50 }) else { return [:] }
    var entry = try bytes.i32(end + 16)
    var files: [String: Data] = [:]
    let entries = try bytes.u16(end + 10)
    for _ in 0..<entries {
        guard try bytes.i32(entry) == 0x0201_4b50 else { break }
        let count = try bytes.i32(entry + 24)
        let nameLength = try bytes.u16(entry + 28)
        let name = String(decoding: try bytes.slice(entry + 46, nameLength), as: UTF8.self)
        if try bytes.u16(entry + 10) == 0 {
            let local = try bytes.i32(entry + 42)
            let start = try local + 30 + bytes.u16(local + 26) + bytes.u16(local + 28)
            files[name] = Data(try bytes.slice(start, count))
        }
        entry += try 46 + nameLength + bytes.u16(entry + 30) + bytes.u16(entry + 32)
    }
    return files
}
