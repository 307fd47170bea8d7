import AsyncHTTPClient
import BigInt
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// `EthereumRPC` over HTTP POST with AsyncHTTPClient: one JSON-RPC 2.0 request per call, each with
/// its own deadline.
public final class HTTPEthereumRPC: EthereumRPC {
    public let url: String
    public let timeout: Duration
    private let httpClient: HTTPClient
    private let nextID = Atomic<UInt64>(1)
    /// Receipts with many logs are the largest answers TelePay asks for; this bounds a runaway response.
    private let maximumResponseBytes = 8 * 1024 * 1024

    /// - Parameters:
    ///   - url: the endpoint; hosted endpoints often embed an API key, so callers keep it out of logs.
    ///   - timeout: the deadline for each call, connection included.
    public init(url: String, timeout: Duration = .seconds(15), httpClient: HTTPClient = .shared) {
        self.url = url
        self.timeout = timeout
        self.httpClient = httpClient
    }

    /// Sends one JSON-RPC request and decodes its `result` as `Result` (use an optional type for
    /// methods that answer `null`). Test controls of local nodes go through here too.
    public func request<Result: Decodable & Sendable>(
        _ method: String, _ params: [JSONValue], as _: Result.Type = Result.self
    ) async throws(EthereumRPCError) -> Result {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let body: Data
        do {
            body = try JSONEncoder().encode(RequestEnvelope(id: id, method: method, params: params))
        } catch {
            throw .invalidResponse(method: method, reason: "cannot encode the parameters: \(error)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))

        let data: Data
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            let buffer = try await response.body.collect(upTo: maximumResponseBytes)
            guard response.status == .ok else {
                throw EthereumRPCError.httpStatus(code: Int(response.status.code), body: String(buffer: buffer))
            }
            data = Data(buffer.readableBytesView)
        } catch let error as EthereumRPCError {
            throw error
        } catch let error as HTTPClientError where Self.isTimeout(error) {
            throw .timedOut(method: method)
        } catch {
            throw .transport(method: method, cause: error)
        }

        let decoder = JSONDecoder()
        let header: ResponseHeader
        do {
            header = try decoder.decode(ResponseHeader.self, from: data)
        } catch {
            throw .invalidResponse(method: method, reason: "not a JSON-RPC response: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        if let error = header.error {
            throw EthereumRPCError.classify(code: error.code, message: error.message, data: error.data, method: method)
        }
        guard header.id == .number(String(id)) else {
            throw .invalidResponse(method: method, reason: "answer is for request \(String(describing: header.id)), not \(id)")
        }
        do {
            return try decoder.decode(ResultEnvelope<Result>.self, from: data).result
        } catch {
            throw .invalidResponse(method: method, reason: "unexpected result: \(error)")
        }
    }

    public func chainId() async throws(EthereumRPCError) -> UInt64 {
        try quantity64(try await request("eth_chainId", [], as: String.self), "eth_chainId")
    }

    public func blockNumber() async throws(EthereumRPCError) -> UInt64 {
        try quantity64(try await request("eth_blockNumber", [], as: String.self), "eth_blockNumber")
    }

    public func balance(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> BigUInt {
        try quantity(
            try await request("eth_getBalance", [.string(address.checksummed), .string(block.description)], as: String.self), "eth_getBalance")
    }

    public func transactionCount(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> UInt64 {
        let text = try await request("eth_getTransactionCount", [.string(address.checksummed), .string(block.description)], as: String.self)
        return try quantity64(text, "eth_getTransactionCount")
    }

    public func maxPriorityFeePerGas() async throws(EthereumRPCError) -> BigUInt {
        try quantity(try await request("eth_maxPriorityFeePerGas", [], as: String.self), "eth_maxPriorityFeePerGas")
    }

    public func feeHistory(blockCount: UInt64, newest: BlockTag, rewardPercentiles: [Double]) async throws(EthereumRPCError) -> FeeHistory {
        let method = "eth_feeHistory"
        let percentiles = JSONValue.array(rewardPercentiles.map { .number(String($0)) })
        let raw = try await request(
            method, [.string(Hex.encodeQuantity(blockCount)), .string(newest.description), percentiles], as: RawFeeHistory.self)
        var rewards: [[BigUInt]] = []
        for row in raw.reward ?? [] {
            var values: [BigUInt] = []
            for text in row { values.append(try quantity(text, method)) }
            rewards.append(values)
        }
        var baseFees: [BigUInt] = []
        for text in raw.baseFeePerGas { baseFees.append(try quantity(text, method)) }
        return FeeHistory(
            oldestBlock: try quantity64(raw.oldestBlock, method), baseFeePerGas: baseFees,
            gasUsedRatio: raw.gasUsedRatio, reward: rewards
        )
    }

    public func estimateGas(_ call: CallRequest) async throws(EthereumRPCError) -> UInt64 {
        try quantity64(try await request("eth_estimateGas", [Self.callObject(call)], as: String.self), "eth_estimateGas")
    }

    public func call(_ call: CallRequest, at block: BlockTag) async throws(EthereumRPCError) -> [UInt8] {
        try bytes(try await request("eth_call", [Self.callObject(call), .string(block.description)], as: String.self), "eth_call")
    }

    public func sendRawTransaction(_ raw: [UInt8]) async throws(EthereumRPCError) -> [UInt8] {
        try bytes(try await request("eth_sendRawTransaction", [.string(Hex.encodeData(raw))], as: String.self), "eth_sendRawTransaction")
    }

    public func transactionReceipt(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionReceipt? {
        let method = "eth_getTransactionReceipt"
        guard let raw = try await request(method, [.string(Hex.encodeData(hash))], as: RawReceipt?.self) else { return nil }
        var logs: [LogEntry] = []
        for log in raw.logs {
            var topics: [[UInt8]] = []
            for topic in log.topics { topics.append(try bytes(topic, method)) }
            logs.append(LogEntry(address: try address(log.address, method), topics: topics, data: try bytes(log.data, method)))
        }
        // Pre-Byzantium receipts carry a state root instead of a status; every chain TelePay uses has status.
        guard let status = raw.status else { throw .invalidResponse(method: method, reason: "receipt has no status") }
        return TransactionReceipt(
            transactionHash: try bytes(raw.transactionHash, method),
            blockHash: try bytes(raw.blockHash, method),
            blockNumber: try quantity64(raw.blockNumber, method),
            succeeded: try quantity(status, method) == 1,
            gasUsed: try quantity64(raw.gasUsed, method),
            effectiveGasPrice: try quantity(raw.effectiveGasPrice ?? "0x0", method),
            from: try address(raw.from, method),
            to: try raw.to.map { (text) throws(EthereumRPCError) in try address(text, method) },
            contractAddress: try raw.contractAddress.map { (text) throws(EthereumRPCError) in try address(text, method) },
            logs: logs
        )
    }

    public func transaction(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionInfo? {
        let method = "eth_getTransactionByHash"
        guard let raw = try await request(method, [.string(Hex.encodeData(hash))], as: RawTransaction?.self) else { return nil }
        return TransactionInfo(
            hash: try bytes(raw.hash, method),
            nonce: try quantity64(raw.nonce, method),
            from: try address(raw.from, method),
            to: try raw.to.map { (text) throws(EthereumRPCError) in try address(text, method) },
            value: try quantity(raw.value, method),
            blockNumber: try raw.blockNumber.map { (text) throws(EthereumRPCError) in try quantity64(text, method) }
        )
    }

    public func block(_ block: BlockTag) async throws(EthereumRPCError) -> BlockHeader? {
        let method = "eth_getBlockByNumber"
        guard let raw = try await request(method, [.string(block.description), .bool(false)], as: RawBlock?.self) else { return nil }
        return BlockHeader(
            number: try quantity64(raw.number, method),
            hash: try bytes(raw.hash, method),
            timestamp: try quantity64(raw.timestamp, method),
            gasLimit: try quantity64(raw.gasLimit, method),
            gasUsed: try quantity64(raw.gasUsed, method),
            baseFeePerGas: try raw.baseFeePerGas.map { (text) throws(EthereumRPCError) in try quantity(text, method) }
        )
    }

    // MARK: - Encoding and decoding

    private static func callObject(_ call: CallRequest) -> JSONValue {
        var object: [String: JSONValue] = ["to": .string(call.to.checksummed), "input": .string(Hex.encodeData(call.data))]
        if let from = call.from { object["from"] = .string(from.checksummed) }
        if let value = call.value { object["value"] = .string(Hex.encodeQuantity(value)) }
        return .object(object)
    }

    private static func isTimeout(_ error: HTTPClientError) -> Bool {
        error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout || error == .writeTimeout
    }

    private func quantity(_ text: String, _ method: String) throws(EthereumRPCError) -> BigUInt {
        do {
            return try Hex.decodeQuantity(text)
        } catch {
            throw .invalidResponse(method: method, reason: "'\(text)' is not a quantity (\(error))")
        }
    }

    private func quantity64(_ text: String, _ method: String) throws(EthereumRPCError) -> UInt64 {
        do {
            return try Hex.decodeQuantityUInt64(text)
        } catch {
            throw .invalidResponse(method: method, reason: "'\(text)' is not a 64-bit quantity (\(error))")
        }
    }

    private func bytes(_ text: String, _ method: String) throws(EthereumRPCError) -> [UInt8] {
        do {
            return try Hex.decodeData(text)
        } catch {
            throw .invalidResponse(method: method, reason: "'\(text.prefix(80))' is not hex data (\(error))")
        }
    }

    private func address(_ text: String, _ method: String) throws(EthereumRPCError) -> Address {
        do {
            return try Address(parsing: text)
        } catch {
            throw .invalidResponse(method: method, reason: "'\(text)' is not an address (\(error))")
        }
    }
}

private struct RequestEnvelope: Encodable {
    let jsonrpc = "2.0"
    let id: UInt64
    let method: String
    let params: [JSONValue]
}

private struct ResponseHeader: Decodable {
    struct ErrorObject: Decodable {
        let code: Int
        let message: String
        let data: JSONValue?
    }

    let id: JSONValue?
    let error: ErrorObject?
}

private struct ResultEnvelope<Result: Decodable>: Decodable {
    let result: Result

    enum CodingKeys: String, CodingKey { case result }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // A `null` result is only acceptable when `Result` is optional; a missing key never is.
        guard container.contains(.result) else {
            throw DecodingError.keyNotFound(CodingKeys.result, .init(codingPath: [], debugDescription: "no result and no error"))
        }
        result = try container.decode(Result.self, forKey: .result)
    }
}

private struct RawFeeHistory: Decodable {
    let oldestBlock: String
    let baseFeePerGas: [String]
    let gasUsedRatio: [Double]
    let reward: [[String]]?
}

private struct RawLog: Decodable {
    let address: String
    let topics: [String]
    let data: String
}

private struct RawReceipt: Decodable {
    let transactionHash: String
    let blockHash: String
    let blockNumber: String
    let status: String?
    let gasUsed: String
    let effectiveGasPrice: String?
    let from: String
    let to: String?
    let contractAddress: String?
    let logs: [RawLog]
}

private struct RawTransaction: Decodable {
    let hash: String
    let nonce: String
    let from: String
    let to: String?
    let value: String
    let blockNumber: String?
}

private struct RawBlock: Decodable {
    let number: String
    let hash: String
    let timestamp: String
    let gasLimit: String
    let gasUsed: String
    let baseFeePerGas: String?
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
